package crashtest

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm/llmtest"
)

// restarting is the notice the engine edits into a reply cut by a shutdown.
const restarting = "This answer will continue here when it is back."

// TestShutdownNotice: SIGTERM while three replies stream (two threads and
// a DM). Each reply's own message gets the restarting notice under the text
// it showed — no new post — and its turn stays pending with the message's
// reference; the next process finishes every answer in that message.
func TestShutdownNotice(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cometbot binary")
	}
	bin := binary(t)
	for _, mode := range []string{"slack-socket", "slack-http", "discord"} {
		t.Run(mode, func(t *testing.T) {
			addr, err := freeAddr()
			if err != nil {
				t.Fatal(err)
			}
			var w world
			if mode == "discord" {
				w, err = newDiscordWorld()
			} else {
				w, err = newSlackWorld(mode == "slack-http", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			dir := t.TempDir()
			// Answers stream for longer than the engine lets them finish
			// (70% of shutdown_timeout); then they are cut and get their
			// notices (within the next 20%). On Discord the wait outlasts
			// the adapter's own grace (5 s, plus a second to close the
			// gateway), so the notices go out after its Run returned.
			timeout, tps := "3s", 1.5
			if mode == "discord" {
				timeout, tps = "10s", 0.6
			}
			yaml := "shutdown_timeout: " + timeout + "\nslack:\n  updates_per_minute: 600\n"
			if err := os.WriteFile(filepath.Join(dir, "cometbot.yaml"), []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			gw := llmtest.NewServer(llmtest.Options{Echo: true, TTFT: 50 * time.Millisecond, TokensPerSecond: tps, DisableRecording: true})
			defer gw.Close()
			r := &crashRun{t: t, w: w, bin: bin, addr: addr, rng: rand.New(rand.NewPCG(1, 2)), log: &tailBuffer{},
				db: filepath.Join(dir, "cometbot.db"), gw: gw}
			defer func() {
				if t.Failed() {
					t.Logf("bot log (tail):\n%s", r.log.tail(200))
				}
			}()
			ctx := context.Background()

			p := r.start(ctx, 0)
			a := &conv{n: 0, thread: true, user: 0}
			b := &conv{n: 1, thread: true, user: 1}
			r.convs = []*conv{a, b}
			msgs := []*userMsg{r.newMsg(a, true, 0), r.newMsg(b, true, 0), r.newMsg(r.dm(0), false, 0)}
			for _, m := range msgs {
				w.send(m)
			}
			streaming := func(m *userMsg) bool {
				for _, rep := range w.replies(m.conv.where) {
					if strings.HasPrefix(m.answer(), rep.text) && strings.Contains(rep.text, m.tag) && rep.text != m.answer() {
						return true
					}
				}
				return false
			}
			if !poll(ctx, 20*time.Second, func() bool { return streaming(msgs[0]) && streaming(msgs[1]) && streaming(msgs[2]) }) {
				t.Fatalf("the three replies did not all stream: %q %q %q\n%s", w.replies(a.where), w.replies(b.where), w.replies(msgs[2].conv.where), r.log.tail(40))
			}
			if err := p.stop(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			if mode == "discord" && r.log.count("replies still in flight at shutdown") == 0 {
				t.Error("the adapter's Run did not outlast its grace: this run does not show notices delivered after it returned")
			}
			shown := map[*userMsg]string{}
			for _, m := range msgs {
				reps := w.replies(m.conv.where)
				if len(reps) != 1 || !strings.HasPrefix(reps[0].text, "echo: "+m.tag) || !strings.HasSuffix(reps[0].text, restarting) {
					t.Errorf("%s after SIGTERM: bot messages %q, want one: the text shown, then the restarting notice", m.tag, reps)
					continue
				}
				shown[m] = reps[0].id
			}
			r.inspect()
			for _, m := range msgs {
				if m.ref == "" || r.w.refMessage(m.ref) != shown[m] {
					t.Errorf("%s: pending with reference %q, want its message %s", m.tag, m.ref, shown[m])
				}
			}

			gw.SetLatency(20*time.Millisecond, 200)
			p = r.start(ctx, 1)
			if !poll(ctx, 30*time.Second, func() bool { return r.answered(msgs[0]) && r.answered(msgs[1]) && r.answered(msgs[2]) }) {
				t.Errorf("not every answer was finished after the restart")
			}
			if err := p.stop(30 * time.Second); err != nil {
				t.Error(err)
			}
			for _, m := range msgs {
				if reps := w.replies(m.conv.where); len(reps) != 1 || reps[0].id != shown[m] || reps[0].text != m.answer() {
					t.Errorf("%s after the restart: %q, want its answer in message %s", m.tag, reps, shown[m])
				}
			}
			r.inspect()
			if r.pending != 0 {
				t.Errorf("%d turns still pending", r.pending)
			}
		})
	}
}
