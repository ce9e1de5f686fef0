package storage

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// checkDecode asserts decodeRecord agrees with encoding/json on data.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	var want, got Record
	wantErr := json.Unmarshal(data, &want)
	gotErr := decodeRecord(data, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("decode %q: err = %v, encoding/json err = %v", data, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decode %q:\n got %#v\nwant %#v", data, got, want)
	}
}

func TestDecodeRecord(t *testing.T) {
	now := time.Date(2026, 11, 25, 19, 43, 28, 123456789, time.FixedZone("X", 3600))
	recs := []Record{
		{},
		{Role: "user", Text: "hi", Author: "U1", AuthorName: "Ann", MessageID: "1.2", Time: now, Status: StatusOK},
		{Role: "assistant", Text: "line 1\nline \"2\"\t<b>&</b> \\ é 🚀 \u2028 \x01", Model: "gpt-4o", Time: now.UTC(),
			Status: StatusFailed, InputTokens: 12345, OutputTokens: -1, Cost: 0.000123, Error: "boom"},
		{Cost: 1e21, InputTokens: 1 << 40},
		{Cost: 1e-7},
	}
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, b)
		var got Record
		if err := decodeRecord(b, &got); err != nil || !reflect.DeepEqual(got, roundTrip(t, r)) {
			t.Fatalf("round trip of %#v = %#v, %v", r, got, err)
		}
	}
	for _, in := range []string{
		``, `{`, `}`, `{}`, ` { } `, `{}x`, `[]`, `null`, `{"role":null}`, `{"role":1}`, `{"ROLE":"user"}`,
		`{"unknown":{"a":[1,2]},"role":"user"}`, `{"unknown":null}`, `{"role":"a","role":"b"}`,
		`{"text":"\ud83d\ude80"}`, `{"text":"\ud83d"}`, `{"text":"\ud83d\u0041"}`, `{"text":"\ud83dx"}`, `{"text":"\u00e9\/"}`,
		`{"text":"bad \q"}`, `{"text":"ctl ` + "\x01" + `"}`, `{"text":"` + "\xff" + `"}`, `{"text":"\u12"}`,
		`{"input_tokens":1.5}`, `{"input_tokens":1e2}`, `{"input_tokens":-0}`, `{"input_tokens":01}`, `{"input_tokens":99999999999999999999}`,
		`{"cost":-1.5e-3}`, `{"cost":1.}`, `{"cost":.5}`, `{"cost":"1"}`, `{"cost":1e400}`,
		`{"time":"2026-11-25T19:43:28Z"}`, `{"time":"2026-11-25T19:43:28.1+01:00"}`, `{"time":"yesterday"}`, `{"time":null}`, `{"time":"2026-11-25T19:43:28\u005a"}`,
		`{"role":"user",}`, `{"role" "user"}`, `{"role":"user" "text":"x"}`, "{\"role\":\"user\"}\n",
	} {
		checkDecode(t, []byte(in))
	}
}

func roundTrip(t *testing.T, r Record) Record {
	t.Helper()
	b, _ := json.Marshal(r)
	var out Record
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{`{"role":"user","text":"hi\n\u003c","time":"2026-11-25T19:43:28Z","input_tokens":3,"cost":0.5}`, `{}`, `{"text":"\ud83d\ude80"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

func TestCounterJSON(t *testing.T) {
	for _, c := range []Counter{
		{}, {Replies: 1, InputTokens: 2, OutputTokens: 3, Cost: 0.000123}, {Replies: -5, Cost: 1e-7}, {Cost: 1e21},
		{Cost: 123456789.125}, {Cost: -0.5}, {InputTokens: 1 << 50, OutputTokens: -1 << 40, Cost: 5e-324},
	} {
		want, _ := json.Marshal(c)
		got, err := encodeCounter(c)
		if err != nil || string(got) != string(want) {
			t.Fatalf("encodeCounter(%+v) = %s, %v; encoding/json: %s", c, got, err, want)
		}
		var back Counter
		if err := decodeCounter(got, &back); err != nil || back != c {
			t.Fatalf("decodeCounter(%s) = %+v, %v", got, back, err)
		}
	}
	for _, in := range []string{`{}`, `{"replies":1.5}`, `{"Replies":2}`, `{"cost":null}`, `{"x":1}`, `[`, `{"input_tokens":1e3}`} {
		var a, b Counter
		errA := json.Unmarshal([]byte(in), &a)
		errB := decodeCounter([]byte(in), &b)
		if (errA == nil) != (errB == nil) || a != b {
			t.Fatalf("decodeCounter(%s) = %+v, %v; encoding/json: %+v, %v", in, b, errB, a, errA)
		}
	}
	if _, err := encodeCounter(Counter{Cost: math.NaN()}); err == nil {
		t.Fatal("NaN cost encoded")
	}
}

func FuzzCounterJSON(f *testing.F) {
	f.Add(1, int64(2), int64(3), 0.25, []byte(`{"replies":1}`))
	f.Fuzz(func(t *testing.T, r int, in, out int64, cost float64, raw []byte) {
		c := Counter{Replies: r, InputTokens: in, OutputTokens: out, Cost: cost}
		want, wantErr := json.Marshal(c)
		got, err := encodeCounter(c)
		if (wantErr == nil) != (err == nil) || string(got) != string(want) {
			t.Fatalf("encodeCounter(%+v) = %s, %v; encoding/json: %s, %v", c, got, err, want, wantErr)
		}
		var a, b Counter
		errA := json.Unmarshal(raw, &a)
		errB := decodeCounter(raw, &b)
		if (errA == nil) != (errB == nil) || (errA == nil && a != b) {
			t.Fatalf("decodeCounter(%q) = %+v, %v; encoding/json: %+v, %v", raw, b, errB, a, errA)
		}
	})
}
