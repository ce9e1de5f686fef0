package slack

import (
	"context"
	"testing"
	"time"
)

func BenchmarkRenderMrkdwn12k(b *testing.B) {
	in := longAnswer(12000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		_ = renderMrkdwn(in, 3500, 3900)
	}
}

// BenchmarkReplyAppend measures what the engine pays per streamed delta.
func BenchmarkReplyAppend(b *testing.B) {
	r := &reply{dirty: make(chan struct{}, 1)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Append(ctx, "token ")
		select {
		case <-r.dirty:
		default:
		}
	}
}

func BenchmarkResolveText(b *testing.B) {
	a, _ := New(Config{BotToken: "xoxb-1"}, nopEngine{})
	a.users.m["U2"] = userInfo{name: "Bob", expires: time.Now().Add(time.Hour)}
	text := "<@UBOT> please ask <@U2> about <#C9|general>, see <https://x.io|site> &amp; &lt;3"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = a.resolveText(ctx, text, "UBOT")
	}
}
