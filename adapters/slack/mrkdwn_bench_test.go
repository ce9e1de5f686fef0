package slack

import (
	"testing"

	"github.com/cometbot/cometbot/bot/bottest"
)

// answer20K is a realistic 20 KB Markdown answer.
func answer20K() string { return bottest.MarkdownAnswer(20_000) }

// BenchmarkMrkdwn converts a 20 KB Markdown answer to Slack mrkdwn.
func BenchmarkMrkdwn(b *testing.B) {
	md := answer20K()
	b.SetBytes(int64(len(md)))
	b.ReportAllocs()
	for b.Loop() {
		if out := toMrkdwn(md); len(out) < len(md)/2 {
			b.Fatalf("output too short: %d bytes", len(out))
		}
	}
}
