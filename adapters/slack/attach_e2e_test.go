package slack

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// drawingModel passes every request to the real client (and so to the fake
// gateway, which records it) and adds a generated image to the answer, as
// an image model would.
type drawingModel struct {
	bot.Model
	img []byte
}

func (m drawingModel) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	resp, err := m.Model.Stream(ctx, req, onDelta)
	if err == nil {
		resp.Images = append(resp.Images, llm.Image{MIMEType: "image/png", Data: m.img})
	}
	return resp, err
}

// An image-only DM goes from Slack's file server through the adapter and
// the engine to the gateway; the model's generated image comes back as an
// upload into the DM's thread.
func TestImageOnlyDMEndToEnd(t *testing.T) {
	t.Parallel()
	generated := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("generated"), 50)...)
	e := newEnv(t, envOptions{
		gateway: llmtest.Options{Reply: "Here is a brighter version."},
		engine:  func(o *bot.Options) { o.Model = drawingModel{Model: o.Model, img: generated} },
	})
	f := e.slack.AddFile(slacktest.FileSpec{Name: "photo.png", MIMEType: "image/png", Data: pngBytes})
	ev := e.slack.DM("U1", "D1", "", "").WithFiles(f)
	e.slack.SendEvent(ev)

	// The image is posted before the answer's final edit (its message
	// exists already): wait for both.
	answered := func() bool {
		for _, m := range e.slack.BotReplies("D1", "") {
			if m.Body() == "Here is a brighter version." {
				return true
			}
		}
		return false
	}
	e.waitFor("the generated image upload and the answer", 15*time.Second, func() bool { return len(e.slack.Uploads("D1", "")) == 1 && answered() })
	up := e.slack.Uploads("D1", "")[0]
	if !bytes.Equal(up.Data, generated) || !strings.HasSuffix(up.Name, ".png") {
		t.Fatalf("upload %s: %d bytes", up.Name, len(up.Data))
	}
	p := e.lastPrompt()
	last := p.Messages[len(p.Messages)-1]
	if last.Role != llm.RoleUser || len(last.Images) != 1 || !bytes.Equal(last.Images[0].Data, pngBytes) {
		t.Fatalf("last user turn: %+v", last)
	}
	if ds := e.slack.Downloads(f.ID); len(ds) != 1 || ds[0].Token != "bot" || ds[0].LoginPage {
		t.Errorf("downloads %+v", ds)
	}
	var text bool
	for _, m := range e.slack.BotReplies("D1", "") {
		text = text || strings.Contains(m.Body(), "brighter version")
	}
	if !text {
		t.Errorf("no text answer: %q", e.bodies("D1", ""))
	}

	// Another image in a thread of the DM: the answer's image goes there.
	thread := e.slack.BotReplies("D1", "")[0].TS
	f2 := e.slack.AddFile(slacktest.FileSpec{Name: "second.png", MIMEType: "image/png", Data: append(pngBytes, 1, 2, 3)})
	e.slack.SendEvent(e.slack.DM("U1", "D1", "", thread).WithFiles(f2))
	e.waitFor("the upload in the thread", 15*time.Second, func() bool { return len(e.slack.Uploads("D1", thread)) == 1 })
	if n := len(e.slack.Uploads("D1", "")); n != 1 {
		t.Errorf("top-level uploads = %d, want still 1", n)
	}
	last = e.lastPrompt().Messages[len(e.lastPrompt().Messages)-1]
	if len(last.Images) != 1 || !bytes.Equal(last.Images[0].Data, append(pngBytes, 1, 2, 3)) {
		t.Fatalf("thread's last user turn: %+v", last)
	}
}

// A shared message without comment in a DM is answered, with the shared
// text and its author quoted for the model.
func TestShareOnlyDMEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: "That build failed on step 3."}})
	ev := e.slack.DM("U1", "D1", "", "").WithShares(e.slack.Share("U2", "C7", "CI is red again on <https://ci.example.com/9|main>"))
	e.slack.SendEvent(ev)
	e.waitThread("D1", "", e.expectClassic("That build failed on step 3."))
	got := e.lastPrompt().LastUser()
	for _, want := range []string{"Bob Builder", "CI is red again on main (https://ci.example.com/9)"} {
		if !strings.Contains(got, want) {
			t.Errorf("model saw %q, want it to contain %q", got, want)
		}
	}
}

// Without files:read the user is told what to fix, and the model still
// answers the text.
func TestMissingFilesReadTellsTheFix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		gateway: llmtest.Options{Echo: true},
		fake:    slacktest.Options{BotScopes: []string{"app_mentions:read", "chat:write", "im:history", "users:read", "assistant:write"}},
	})
	f := e.slack.AddFile(slacktest.FileSpec{Name: "photo.png", MIMEType: "image/png", Data: pngBytes})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> what is in it?", "").WithFiles(f)
	e.slack.SendEvent(ev)
	e.waitFor("the answer with the fix", 15*time.Second, func() bool {
		var all string
		for _, b := range e.bodies("C1", ev.TS) {
			all += b
		}
		return strings.Contains(all, "echo: what is in it?") && strings.Contains(all, "files:read")
	})
	if len(e.lastPrompt().Messages[len(e.lastPrompt().Messages)-1].Images) != 0 {
		t.Error("the login page reached the model as an image")
	}
}
