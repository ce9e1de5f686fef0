package sse

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

type ev struct {
	Type, Data, ID string
	Retry          int
}

func readAll(r io.Reader) ([]ev, error) {
	rd := NewReader(r)
	var out []ev
	for {
		e, err := rd.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev{e.Type, string(e.Data), e.ID, e.Retry})
	}
}

func TestReaderSpec(t *testing.T) {
	t.Parallel()
	m := func(data string) ev { return ev{"message", data, "", -1} }
	tests := []struct {
		name string
		in   string
		want []ev
	}{
		{"simple", "data: hello\n\n", []ev{m("hello")}},
		{"no space after colon", "data:hello\n\n", []ev{m("hello")}},
		{"only one space stripped", "data:  two\n\n", []ev{m(" two")}},
		{"event type", "event: ping\ndata: {}\n\n", []ev{{"ping", "{}", "", -1}}},
		{"type resets per event", "event: a\ndata: 1\n\ndata: 2\n\n", []ev{{"a", "1", "", -1}, m("2")}},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []ev{m("a\nb\n")}},
		{"empty data dispatches", "data\n\n", []ev{m("")}},
		{"comments ignored", ": keep-alive\n:\ndata: x\n: mid\n\n", []ev{m("x")}},
		{"CRLF", "event: e\r\ndata: x\r\n\r\n", []ev{{"e", "x", "", -1}}},
		{"lone CR", "data: x\rdata: y\r\r", []ev{m("x\ny")}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\n", []ev{m("a\nb\nc")}},
		{"no data no dispatch", "event: lonely\n\ndata: after\n\n", []ev{m("after")}},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []ev{{"message", "a", "7", -1}, {"message", "b", "7", -1}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n", []ev{{"message", "a", "1", -1}, {"message", "b", "1", -1}}},
		{"retry digits", "retry: 1500\ndata: a\n\nretry: 12x\ndata: b\n\n", []ev{{"message", "a", "", 1500}, {"message", "b", "", 1500}}},
		{"unknown field ignored", "foo: bar\ndata: a\n\n", []ev{m("a")}},
		{"BOM stripped", "\xef\xbb\xbfdata: a\n\n", []ev{m("a")}},
		{"field without value", "data\ndata\n\n", []ev{m("\n")}},
		{"colon in value", "data: {\"a\":\"b: c\"}\n\n", []ev{m(`{"a":"b: c"}`)}},
		{"last event without blank line is kept", "data: a\n\ndata: b\n", []ev{m("a"), m("b")}},
		{"cut mid-line is discarded", "data: a\n\ndata: b", []ev{m("a")}},
		{"empty stream", "", nil},
		{"only comments", ": hi\n: there\n", nil},
		{"event field case-sensitive", "Event: x\nDATA: y\ndata: z\n\n", []ev{m("z")}},
		{"gemini style", "data: {\"candidates\":[]}\r\n\r\ndata: {\"x\":1}\r\n\r\n", []ev{m(`{"candidates":[]}`), m(`{"x":1}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, mode := range []string{"whole", "onebyte", "half"} {
				var r io.Reader = strings.NewReader(tt.in)
				switch mode {
				case "onebyte":
					r = iotest.OneByteReader(r)
				case "half":
					r = iotest.HalfReader(r)
				}
				got, err := readAll(r)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s:\n got %+v\nwant %+v", mode, got, tt.want)
				}
			}
		})
	}
}

func TestReaderLongLinesAndLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 100_000)
	got, err := readAll(strings.NewReader("data: " + big + "\n\n"))
	if err != nil || len(got) != 1 || got[0].Data != big {
		t.Fatalf("long line: err %v, %d events", err, len(got))
	}
	rd := NewReader(strings.NewReader("data: " + big + "\n\n"))
	rd.SetMaxEventSize(1000)
	if _, err := rd.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	rd = NewReader(strings.NewReader(strings.Repeat("data: 0123456789\n", 200) + "\n"))
	rd.SetMaxEventSize(1000)
	if _, err := rd.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("joined data: err = %v, want ErrTooLarge", err)
	}
}

func TestReaderReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	rd := NewReader(r)
	e, err := rd.Next()
	if err != nil || string(e.Data) != "a" {
		t.Fatalf("first = %q, %v", e.Data, err)
	}
	if _, err := rd.Next(); err != boom {
		t.Fatalf("err = %v, want boom (a pending event is not dispatched on a read error)", err)
	}
}

func TestReaderReset(t *testing.T) {
	t.Parallel()
	rd := NewReader(strings.NewReader("id: 1\ndata: a\n\n"))
	if e, err := rd.Next(); err != nil || e.ID != "1" {
		t.Fatal(e, err)
	}
	rd.Reset(strings.NewReader("data: b\n\n"))
	e, err := rd.Next()
	if err != nil || string(e.Data) != "b" || e.ID != "" {
		t.Fatalf("after reset: %+v %v", e, err)
	}
}

// reference is a deliberately naive implementation of the same rules, for
// differential fuzzing.
func reference(in []byte) []ev {
	s := strings.TrimPrefix(string(in), "\xef\xbb\xbf")
	var lines []string
	lastComplete := true
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lastComplete = false
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			s = s[i+2:]
		} else {
			s = s[i+1:]
		}
	}
	var out []ev
	var data []string
	typ, id, retry := "", "", -1
	dispatch := func() {
		t := typ
		if t == "" {
			t = "message"
		}
		out = append(out, ev{t, strings.Join(data, "\n"), id, retry})
		data, typ = nil, ""
	}
	for _, l := range lines {
		if l == "" {
			if data == nil {
				typ = ""
				continue
			}
			dispatch()
			continue
		}
		if l[0] == ':' {
			continue
		}
		f, v, ok := strings.Cut(l, ":")
		if ok {
			v = strings.TrimPrefix(v, " ")
		}
		switch f {
		case "data":
			data = append(data, v)
		case "event":
			typ = v
		case "id":
			if !strings.Contains(v, "\x00") {
				id = v
			}
		case "retry":
			if n, ok := digits([]byte(v)); ok {
				retry = n
			}
		}
	}
	if lastComplete && data != nil {
		dispatch()
	}
	return out
}

func FuzzSSE(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzSSE.
	f.Add([]byte("data: hello\n\n"))
	f.Add([]byte("event: x\r\ndata: a\r\ndata: b\r\n\r\n: c\rid: 1\rretry: 10\r\r"))
	f.Fuzz(func(t *testing.T, in []byte) {
		want := reference(in)
		for _, mode := range []string{"whole", "onebyte"} {
			var r io.Reader = bytes.NewReader(in)
			if mode == "onebyte" {
				r = iotest.OneByteReader(r)
			}
			got, err := readAll(r)
			if err != nil {
				if errors.Is(err, ErrTooLarge) {
					return
				}
				t.Fatalf("%s: %v", mode, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d events, reference %d\n got %+v\nwant %+v", mode, len(got), len(want), got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s: event %d = %+v, reference %+v", mode, i, got[i], want[i])
				}
			}
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	for range 1000 {
		buf.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}` + "\n\n")
	}
	in := buf.Bytes()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	r := bytes.NewReader(in)
	rd := NewReader(r)
	for b.Loop() {
		r.Reset(in)
		rd.Reset(r)
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
	}
}

// hugeLine is a lazily generated stream: prefix, then n bytes of 'a' with no
// line ending. It counts the bytes it hands out.
type hugeLine struct {
	prefix string
	n      int
	read   int
}

func (h *hugeLine) Read(p []byte) (int, error) {
	if h.read >= len(h.prefix)+h.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && h.read < len(h.prefix)+h.n {
		if h.read < len(h.prefix) {
			p[k] = h.prefix[h.read]
		} else {
			p[k] = 'a'
		}
		k++
		h.read++
	}
	return k, nil
}

// A single 100 MB line — data or comment — is refused after about the
// limit, never buffered whole.
func TestReaderRefusesHugeLine(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"data: ", ": "} {
		src := &hugeLine{prefix: prefix, n: 100 << 20}
		rd := NewReader(src)
		if _, err := rd.Next(); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%q: err = %v, want ErrTooLarge", prefix, err)
		}
		if src.read > 2*DefaultMaxEventSize || cap(rd.buf) > DefaultMaxEventSize+2 || cap(rd.data) > DefaultMaxEventSize {
			t.Errorf("%q: read %d bytes, buffers %d and %d for a limit of %d", prefix, src.read, cap(rd.buf), cap(rd.data), DefaultMaxEventSize)
		}
	}
}
