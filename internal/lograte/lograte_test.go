package lograte

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiterOneLinePerReasonPerInterval(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	l := &Limiter{Every: 10 * time.Second, Now: func() time.Time { return now }}
	steps := []struct {
		advance time.Duration
		msg     string
	}{
		{0, "bad signature"},                // t=0: logged
		{time.Second, "bad signature"},      // t=1: suppressed
		{time.Second, "too large"},          // t=2: logged (another reason)
		{time.Second, "bad signature"},      // t=3: suppressed
		{2 * time.Second, "too large"},      // t=5: suppressed
		{8 * time.Second, "bad signature"},  // t=13: logged, 2 suppressed
		{time.Second, "too large"},          // t=14: logged, 1 suppressed
		{10 * time.Second, "bad signature"}, // t=24: logged
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		l.Warn(log, s.msg, "path", "/slack/events")
	}
	want := []string{
		`level=WARN msg="bad signature" path=/slack/events`,
		`level=WARN msg="too large" path=/slack/events`,
		`level=WARN msg="bad signature" path=/slack/events suppressed=2`,
		`level=WARN msg="too large" path=/slack/events suppressed=1`,
		`level=WARN msg="bad signature" path=/slack/events`,
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestZeroLimiterWorks(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l Limiter
	for range 100 {
		l.Warn(log, "flood")
	}
	if n := strings.Count(buf.String(), "flood"); n != 1 {
		t.Fatalf("%d lines for 100 calls within the interval, want 1", n)
	}
}
