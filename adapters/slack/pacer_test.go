package slack

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestBudgetInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		budget int
		window time.Duration
		want   time.Duration
	}{
		{50, time.Minute, 1333333333},
		{100, time.Minute, 666666666},
		{10, time.Second, 111111111},
		{0, time.Second, 1111111111},
	}
	for _, tt := range tests {
		if got := budgetInterval(tt.budget, tt.window); got != tt.want {
			t.Errorf("budgetInterval(%d, %v) = %v, want %v", tt.budget, tt.window, got, tt.want)
		}
	}
}

func TestLaneSpacesCalls(t *testing.T) {
	t.Parallel()
	l := newLane(20*time.Millisecond, 1)
	ctx := context.Background()
	start := time.Now()
	var times []time.Time
	for range 6 {
		if err := l.acquire(ctx, prioLow); err != nil {
			t.Fatal(err)
		}
		times = append(times, time.Now())
	}
	// The first token is the burst; five more take at least 5 intervals.
	// (Single gaps may be shorter when a sleep overshot: the limiter keeps
	// the average, which is what a per-window budget needs.)
	if el := times[len(times)-1].Sub(start); el < 95*time.Millisecond {
		t.Fatalf("6 tokens at 20ms spacing took only %v", el)
	}
}

func TestLaneHighPriorityFirst(t *testing.T) {
	t.Parallel()
	// Grants are 200 ms apart, far more than a goroutine needs to note its
	// turn.
	l := newLane(200*time.Millisecond, 1)
	ctx := context.Background()
	// Hold the lane while the callers queue up, so that their order (not
	// the scheduler's timing) decides who goes first.
	l.pause(time.Hour)
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	add := func(name string, p priority, queued int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.acquire(ctx, p); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}()
		waitQueued(t, l, p, queued)
	}
	add("low1", prioLow, 1)
	add("low2", prioLow, 2)
	add("high", prioHigh, 1)
	l.mu.Lock()
	l.pausedUntil = time.Time{}
	l.mu.Unlock()
	l.poke()
	wg.Wait()
	if len(order) != 3 || order[0] != "high" || order[1] != "low1" || order[2] != "low2" {
		t.Fatalf("order = %v, want [high low1 low2]", order)
	}
}

// waitQueued waits until n callers of priority p are queued in l.
func waitQueued(t *testing.T, l *lane, p priority, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		queued := len(l.queues[p])
		l.mu.Unlock()
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers of priority %d never queued", n, p)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLanePauseAndCancel(t *testing.T) {
	t.Parallel()
	l := newLane(time.Millisecond, 1)
	l.pause(150 * time.Millisecond)
	start := time.Now()
	if err := l.acquire(context.Background(), prioHigh); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 140*time.Millisecond {
		t.Fatalf("acquire during a 150ms pause returned after %v", el)
	}

	l.pause(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := l.acquire(ctx, prioLow); err == nil {
		t.Fatal("acquire succeeded during a pause")
	}
	// The dispatcher leaves once nobody waits.
	deadline := time.Now().Add(time.Second)
	for {
		l.mu.Lock()
		running := l.running
		l.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dispatcher still running with an empty queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
