// Package sse is a small reader for Server-Sent Events streams written to the
// WHATWG HTML specification ("9.2 Server-sent events", event stream
// interpretation). It is the one SSE parser behind all four gateway wire
// formats in package llm.
//
// What the spec asks and this reader does:
//   - lines end in CRLF, LF or a lone CR (a CR at the end of one read and an LF
//     at the start of the next are one line ending);
//   - a leading UTF-8 byte order mark is dropped;
//   - a line starting with ':' is a comment (keep-alives) and is ignored;
//   - "field: value" — one space after the colon is removed; a line without a
//     colon is a field with an empty value;
//   - several data lines in one event are joined with "\n";
//   - a blank line dispatches the event; an event with no data line is not
//     dispatched (its event type is forgotten);
//   - the event type defaults to "message" when no event line was seen;
//   - "id" values containing NUL are ignored; the last id persists across
//     events; "retry" is honoured only when it is all ASCII digits;
//   - unknown fields are ignored.
//
// One documented leniency: when the stream ends after a complete line (one
// that had its line ending) but before the blank line that should dispatch
// the event, the pending event is still dispatched. Some gateways drop the
// final blank line; a stream cut in the middle of a line is still discarded,
// as the spec requires.
//
// The reader does not allocate per event in the steady state: Event.Data
// aliases an internal buffer that is valid only until the next call to Next.
package sse

import (
	"bytes"
	"errors"
	"io"
)

// DefaultMaxEventSize is the default limit on one line and on one event's
// joined data, in bytes.
const DefaultMaxEventSize = 4 << 20

// ErrTooLarge is returned by Next when a line or an event's data exceeds the
// reader's maximum size.
var ErrTooLarge = errors.New("sse: event too large")

// Event is one dispatched server-sent event.
type Event struct {
	// Type is the event type: the last "event:" value, or "message" when the
	// event had none.
	Type string
	// Data is the event data (data lines joined with "\n", without a final
	// newline). It aliases the reader's buffer: it is valid only until the
	// next call to Next. Copy it to keep it.
	Data []byte
	// ID is the last event id seen in the stream so far (it persists across
	// events, as the spec says).
	ID string
	// Retry is the reconnection time in milliseconds from the last valid
	// "retry:" field, or -1 when the stream never set one.
	Retry int
}

// Reader reads events from a stream. It is not safe for concurrent use.
type Reader struct {
	r      io.Reader
	buf    []byte
	rpos   int
	wpos   int
	rerr   error
	skipLF bool // the previous line ended with CR: an LF right after it belongs to it
	bomChk bool // the BOM check at stream start is done

	max int

	data     []byte
	nData    int // data lines in the pending event
	typ      []byte
	typSet   bool
	lastType string
	id       string
	retry    int
}

// NewReader returns a Reader reading from r with DefaultMaxEventSize.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, buf: make([]byte, 4096), max: DefaultMaxEventSize, retry: -1, lastType: "message"}
}

// SetMaxEventSize sets the limit on one line and on one event's data, in bytes.
// Values below 64 are raised to 64.
func (r *Reader) SetMaxEventSize(n int) {
	if n < 64 {
		n = 64
	}
	r.max = n
}

// Reset makes r read a new stream from src, keeping its buffers. The last
// event id and retry value are forgotten.
func (r *Reader) Reset(src io.Reader) {
	r.r = src
	r.rpos, r.wpos = 0, 0
	r.rerr = nil
	r.skipLF = false
	r.bomChk = false
	r.data = r.data[:0]
	r.nData = 0
	r.typ = r.typ[:0]
	r.typSet = false
	r.id = ""
	r.retry = -1
}

// Next returns the next event. At the end of the stream it returns io.EOF;
// a read error from the underlying reader is returned as is. The returned
// Event.Data is valid only until the next call.
func (r *Reader) Next() (Event, error) {
	for {
		line, complete, err := r.readLine()
		if err != nil {
			if err == io.EOF && complete && r.nData > 0 {
				// Leniency: a complete last line without the final blank line.
				return r.dispatch(), nil
			}
			if err == io.EOF {
				r.nData = 0
				r.data = r.data[:0]
			}
			return Event{}, err
		}
		if !complete {
			// The stream ended in the middle of a line: discard it and the
			// pending event, as the spec requires.
			r.nData = 0
			r.data = r.data[:0]
			return Event{}, io.EOF
		}
		if len(line) == 0 {
			if r.nData == 0 {
				r.typ = r.typ[:0]
				r.typSet = false
				continue
			}
			return r.dispatch(), nil
		}
		if line[0] == ':' {
			continue
		}
		var field, value []byte
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		} else {
			field = line
		}
		switch string(field) {
		case "data":
			if r.nData > 0 {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > r.max {
				return Event{}, ErrTooLarge
			}
			r.data = append(r.data, value...)
			r.nData++
		case "event":
			r.typ = append(r.typ[:0], value...)
			r.typSet = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				if string(value) != r.id {
					r.id = string(value)
				}
			}
		case "retry":
			if n, ok := digits(value); ok {
				r.retry = n
			}
		}
	}
}

// dispatch returns the pending event and clears the data and type buffers.
func (r *Reader) dispatch() Event {
	ev := Event{Data: r.data, ID: r.id, Retry: r.retry}
	switch {
	case !r.typSet || len(r.typ) == 0:
		ev.Type = "message"
	case string(r.typ) == r.lastType:
		ev.Type = r.lastType
	default:
		r.lastType = string(r.typ)
		ev.Type = r.lastType
	}
	// The data buffer is reused; the caller's view stays valid until the
	// next Next, which truncates before appending.
	r.data = r.data[:0]
	r.nData = 0
	r.typ = r.typ[:0]
	r.typSet = false
	return ev
}

func digits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// readLine returns the next line without its line ending. complete reports
// whether the line had a line ending (false for a last line cut by EOF).
// The returned slice aliases r.buf and is valid until the next readLine.
func (r *Reader) readLine() (line []byte, complete bool, err error) {
	for {
		if r.skipLF && r.rpos < r.wpos {
			if r.buf[r.rpos] == '\n' {
				r.rpos++
			}
			r.skipLF = false
		}
		if !r.bomChk {
			if r.wpos-r.rpos < 3 && r.rerr == nil {
				if err := r.fill(); err != nil {
					return nil, false, err
				}
				continue
			}
			r.bomChk = true
			if bytes.HasPrefix(r.buf[r.rpos:r.wpos], []byte("\xef\xbb\xbf")) {
				r.rpos += 3
			}
		}
		seg := r.buf[r.rpos:r.wpos]
		lf := bytes.IndexByte(seg, '\n')
		search := seg
		if lf >= 0 {
			search = seg[:lf]
		}
		if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
			line = seg[:cr]
			if cr+1 < len(seg) {
				if seg[cr+1] == '\n' {
					r.rpos += cr + 2
				} else {
					r.rpos += cr + 1
				}
			} else {
				r.rpos += cr + 1
				r.skipLF = true
			}
			return line, true, nil
		}
		if lf >= 0 {
			r.rpos += lf + 1
			return seg[:lf], true, nil
		}
		if r.rerr != nil {
			if r.rpos < r.wpos {
				line = seg
				r.rpos = r.wpos
				return line, false, r.rerr
			}
			return nil, true, r.rerr
		}
		if err := r.fill(); err != nil {
			return nil, false, err
		}
	}
}

// fill reads more bytes into the buffer, compacting or growing it. It records
// a read error in r.rerr (returned after the buffered bytes are consumed) and
// returns an error only for an oversized line.
func (r *Reader) fill() error {
	if r.rpos > 0 {
		n := copy(r.buf, r.buf[r.rpos:r.wpos])
		r.wpos = n
		r.rpos = 0
	}
	if r.wpos == len(r.buf) {
		if len(r.buf) >= r.max+2 {
			return ErrTooLarge
		}
		nb := make([]byte, min(2*len(r.buf), r.max+2))
		copy(nb, r.buf[:r.wpos])
		r.buf = nb
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.wpos:])
		r.wpos += n
		if err != nil {
			r.rerr = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	r.rerr = io.ErrNoProgress
	return nil
}
