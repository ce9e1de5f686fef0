package bot_test

import (
	"fmt"
	"testing"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
)

// BenchmarkSplit splits a 20 KB Markdown answer into Discord-sized (2,000)
// and Slack-text-sized (4,000 runes) parts.
func BenchmarkSplit(b *testing.B) {
	text := bottest.MarkdownAnswer(20_000)
	for _, limit := range []int{2000, 4000} {
		b.Run(fmt.Sprintf("20KB/limit=%d", limit), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if parts := bot.Split(text, limit); len(parts) < 2 {
					b.Fatalf("%d parts", len(parts))
				}
			}
		})
	}
}
