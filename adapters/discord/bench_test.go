package discord

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/cometbot/cometbot/bot"
)

type nopEngine struct{}

func (nopEngine) HandleMessage(context.Context, bot.Message, bot.Output) error { return nil }
func (nopEngine) HandleCommand(context.Context, bot.Command) bot.Answer        { return bot.Answer{} }
func (nopEngine) ModelChoices(context.Context, string, int) []bot.Choice       { return nil }

// BenchmarkHandleMessage measures the adapter's own work between a
// MESSAGE_CREATE and the engine call: filtering, mention resolution,
// conversation routing (channel known from the gateway caches) and the
// output it hands over.
func BenchmarkHandleMessage(b *testing.B) {
	c := DefaultConfig()
	c.Token = "bench"
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(c, nopEngine{})
	if err != nil {
		b.Fatal(err)
	}
	a.botID, a.botName = "1", "cometbot"
	a.chans.Put("10", chanInfo{Type: discordgo.ChannelTypeGuildText, Guild: "5", Name: "general"})
	m := &discordgo.Message{
		ID: "100", ChannelID: "10", GuildID: "5", Type: discordgo.MessageTypeDefault,
		Content:   "<@1> can you summarize what <@2> said in <#10> about the release?",
		Author:    &discordgo.User{ID: "3", Username: "alice", GlobalName: "Alice"},
		Mentions:  []*discordgo.User{{ID: "1", Username: "cometbot", Bot: true}, {ID: "2", Username: "bob"}},
		Member:    &discordgo.Member{Nick: "Al"},
		Timestamp: time.Now(),
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.handleMessage(ctx, m)
	}
}

// BenchmarkSplitMessage splits a 20 KB Markdown answer for Discord.
func BenchmarkSplitMessage(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 20000 {
		sb.WriteString("A paragraph of an answer with some **bold** words and `code`.\n\n```go\nfunc main() {}\n```\n\n")
	}
	text := sb.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(splitMessage(text)) < 10 {
			b.Fatal("too few parts")
		}
	}
}
