package metrics_test

import (
	"testing"
	"time"

	"github.com/cometbot/cometbot/internal/metrics"
)

// BenchmarkTurnReports is what one turn reports with metrics on: the
// engine's gauges, turn, latency and usage reports, two gateway requests,
// one store commit, five platform calls and their pacing waits.
//
//	go test -run '^$' -bench TurnReports -benchmem ./internal/metrics
func BenchmarkTurnReports(b *testing.B) {
	m := metrics.New(metrics.Options{NoProcess: true, KnownModel: func(id string) bool { return id == "gpt-4o-mini" }})
	b.ReportAllocs()
	for b.Loop() {
		m.TurnQueued(1)
		m.TurnQueued(-1)
		m.TurnRunning(1)
		m.GatewayRequest("chat", 200)
		m.GatewayRequest("chat", 200)
		m.FirstToken(300 * time.Millisecond)
		m.FirstVisible(350 * time.Millisecond)
		for range 5 {
			m.PlatformWait("slack", time.Millisecond)
			m.PlatformRequest("slack", "chat.update", 200)
		}
		m.Usage("gpt-4o-mini", 120, 80, 0.0001)
		m.DBCommit(2 * time.Millisecond)
		m.TurnRunning(-1)
		m.TurnDone("slack", "ok", 2*time.Second)
	}
}
