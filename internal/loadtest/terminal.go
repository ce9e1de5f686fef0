package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
)

// chunk is bytes read from the bot's stdout and when.
type chunk struct {
	at time.Time
	b  []byte
}

// runTerminal drives `cometbot chat` over its stdin and stdout: one
// conversation (a DM in the engine's terms), one message per line. It
// measures the gateway-side latencies through the real binary without any
// chat platform.
func runTerminal(ctx context.Context, cfg Config, bin string, env []string, gtap *gatewayTap, rep *Report, logf func(string, ...any)) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := startBot(runCtx, bin, []string{"chat"}, env, true)
	if err != nil {
		return err
	}
	defer func() {
		select {
		case <-p.exited:
		default:
			_ = p.stop(5 * time.Second)
		}
	}()
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		buf := make([]byte, 64*1024)
		for {
			n, err := p.stdout.Read(buf)
			if n > 0 {
				chunks <- chunk{at: time.Now(), b: append([]byte(nil), buf[:n]...)}
			}
			if err != nil {
				return
			}
		}
	}()
	measureIdle(ctx, cfg, p, rep)

	c := &conversation{idx: 0, channel: "terminal"}
	logf("driving one terminal conversation for %v", cfg.Duration)
	stopPerf := startPerf(cfg.PerfData, p, logf)
	rep.HarnessCPU = selfCPU()
	cpu0, _ := p.cpuTime()
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var pending []byte
	for n := 0; cfg.Turns <= 0 || n < cfg.Turns; n++ {
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		id := turnID{0, n}
		text := prompt(id, cfg.PromptWords)
		want := []byte("echo: " + text + "\n")
		t := &turn{id: id, expect: normalize("echo: " + text)}
		c.turns = append(c.turns, t)
		t.sent = time.Now()
		if _, err := io.WriteString(p.stdin, text+"\n"); err != nil {
			return fmt.Errorf("loadtest: write to cometbot chat: %w", err)
		}
		timer := time.NewTimer(cfg.TurnTimeout)
	read:
		for {
			select {
			case ch, ok := <-chunks:
				if !ok {
					break read
				}
				t.calls++
				if t.firstVisible.IsZero() {
					t.firstVisible = ch.at
				}
				pending = append(pending, ch.b...)
				if i := bytes.Index(pending, want); i >= 0 {
					t.complete, t.final = true, ch.at
					pending = pending[i+len(want):]
					break read
				}
				if bytes.Contains(pending, []byte("⚠️")) {
					t.failed = string(pending)
					break read
				}
			case <-timer.C:
				break read
			case <-ctx.Done():
				break read
			}
		}
		timer.Stop()
		if !t.complete {
			if t.failed == "" {
				t.timedOut = true
			}
			break
		}
		if cfg.Think > 0 {
			time.Sleep(cfg.Think)
		}
	}
	rep.Elapsed = time.Since(start)
	stopPerf()
	finishProcess(p, rep, start, cpu0, func() error {
		_ = p.stdin.Close() // end of input: `cometbot chat` exits
		select {
		case <-p.exited:
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.waitErr
		case <-time.After(20 * time.Second):
			return p.stop(5 * time.Second)
		}
	})
	rep.collect([]*conversation{c}, gtap)
	return nil
}
