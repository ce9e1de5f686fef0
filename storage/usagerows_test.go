package storage

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestUsageRows(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "u.db"))
	ctx := context.Background()
	d1 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	for _, e := range []UsageEntry{
		{Time: d1, Workspace: "slack/T1", Channel: "C1", User: "U1", Model: "a", Counter: Counter{Replies: 1, Cost: 1}},
		{Time: d1, Workspace: "discord/G1", Channel: "C2", User: "U2", Model: "b", Counter: Counter{Replies: 1, Cost: 2}},
		{Time: d2, Workspace: "slack/T1", Channel: "C1", User: "U1", Model: "a", Counter: Counter{Replies: 1, Cost: 4}},
		{Time: d2, Workspace: "slack/T1", Channel: "C1", User: "U1", Model: "b", Counter: Counter{Replies: 1, Cost: 8}},
	} {
		if err := s.AddUsage(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.UsageRows(ctx, []string{Day(d1), Day(d2)}, "", KindModel)
	if err != nil {
		t.Fatal(err)
	}
	want := []UsageRow{
		{Day(d1), "discord/G1", KindModel, "b", Counter{Replies: 1, Cost: 2}},
		{Day(d1), "slack/T1", KindModel, "a", Counter{Replies: 1, Cost: 1}},
		{Day(d2), "slack/T1", KindModel, "a", Counter{Replies: 1, Cost: 4}},
		{Day(d2), "slack/T1", KindModel, "b", Counter{Replies: 1, Cost: 8}},
	}
	if len(all) != len(want) {
		t.Fatalf("rows = %+v", all)
	}
	for i := range want {
		if all[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, all[i], want[i])
		}
	}
	one, _ := s.UsageRows(ctx, []string{Month(d1)}, "slack/T1", KindAll)
	if len(one) != 1 || one[0].Cost != 13 || one[0].ID != "*" {
		t.Errorf("month of slack/T1 = %+v", one)
	}
	if every, _ := s.UsageRows(ctx, []string{Day(d2)}, "slack/T1", ""); len(every) != 5 { // all, user, channel, 2 models
		t.Errorf("every kind of a day = %+v", every)
	}
}
