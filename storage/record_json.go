package storage

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeRecord decodes one stored record. It is equivalent to
// json.Unmarshal(data, r) on a zero Record, but parses the flat object that
// json.Marshal(Record) writes without reflection (History decodes up to a
// hundred records per turn, and encoding/json dominated a turn's CPU).
// Anything it does not expect — unknown or differently cased keys, nested
// values, invalid UTF-8, malformed input — goes to encoding/json.
func decodeRecord(data []byte, r *Record) error {
	*r = Record{}
	if utf8.Valid(data) && fastRecord(data, r) {
		return nil
	}
	*r = Record{}
	return json.Unmarshal(data, r)
}

// fastRecord parses data into r; false means "use encoding/json".
func fastRecord(data []byte, r *Record) bool {
	p := jsonParser{b: data}
	p.ws()
	if !p.eat('{') {
		return false
	}
	p.ws()
	if p.eat('}') {
		return p.end()
	}
	for {
		p.ws()
		key, ok := p.rawKey()
		if !ok {
			return false
		}
		p.ws()
		if !p.eat(':') {
			return false
		}
		p.ws()
		if p.null() {
			// null leaves a field unchanged, as encoding/json does.
		} else {
			switch string(key) {
			case "role":
				ok = p.str(&r.Role)
			case "text":
				ok = p.str(&r.Text)
			case "author":
				ok = p.str(&r.Author)
			case "author_name":
				ok = p.str(&r.AuthorName)
			case "message_id":
				ok = p.str(&r.MessageID)
			case "status":
				ok = p.str(&r.Status)
			case "model":
				ok = p.str(&r.Model)
			case "error":
				ok = p.str(&r.Error)
			case "time":
				ok = p.time(&r.Time)
			case "input_tokens":
				ok = p.int(&r.InputTokens)
			case "output_tokens":
				ok = p.int(&r.OutputTokens)
			case "cost":
				ok = p.float(&r.Cost)
			default:
				return false
			}
			if !ok {
				return false
			}
		}
		p.ws()
		if p.eat('}') {
			return p.end()
		}
		if !p.eat(',') {
			return false
		}
	}
}

// intern returns the constant for the few values most records share (roles
// and statuses), without allocating; other values are copied.
func intern(b []byte) string {
	switch string(b) {
	case "user":
		return "user"
	case "assistant":
		return "assistant"
	case StatusOK:
		return StatusOK
	case StatusFailed:
		return StatusFailed
	case StatusCancelled:
		return StatusCancelled
	}
	return string(b)
}

// jsonParser is a cursor over a JSON document.
type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *jsonParser) null() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// rawKey reads an object key without escapes.
func (p *jsonParser) rawKey() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			k := p.b[start:p.i]
			p.i++
			return k, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// str reads a JSON string (input already known to be valid UTF-8).
func (p *jsonParser) str(dst *string) bool {
	if !p.eat('"') {
		return false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			*dst = intern(p.b[start:p.i])
			p.i++
			return true
		}
		if c == '\\' {
			return p.escaped(dst, start)
		}
		if c < 0x20 {
			return false
		}
		p.i++
	}
	return false
}

// escaped finishes a string that contains escapes, starting over at start.
func (p *jsonParser) escaped(dst *string, start int) bool {
	out := make([]byte, 0, p.i-start+16)
	out = append(out, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			*dst = string(out)
			p.i++
			return true
		case c < 0x20:
			return false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return false
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			rr, ok := p.hex4()
			if !ok {
				return false
			}
			if utf16.IsSurrogate(rr) {
				// A valid pair is decoded; anything else is U+FFFD, and the
				// following escape (if any) is read on its own.
				save := p.i
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					p.i += 2
					if rr1, ok := p.hex4(); ok {
						if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
							out = utf8.AppendRune(out, dec)
							continue
						}
					}
				}
				p.i = save
				rr = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, rr)
		default:
			return false
		}
	}
	return false
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	p.i += 4
	return r, true
}

// number returns the literal of a JSON number, validated by the grammar.
func (p *jsonParser) number() ([]byte, bool) {
	start := p.i
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.i < len(p.b) && '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		return nil, false
	}
	if p.eat('.') {
		if p.digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

func (p *jsonParser) digits() int {
	n := 0
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *jsonParser) int(dst *int) bool {
	lit, ok := p.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(lit), 10, 0)
	if err != nil {
		return false // a fraction, exponent or overflow: encoding/json decides
	}
	*dst = int(v)
	return true
}

func (p *jsonParser) float(dst *float64) bool {
	lit, ok := p.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return false
	}
	*dst = v
	return true
}

// time reads an RFC 3339 string the way time.Time.UnmarshalJSON does.
// Escaped or malformed strings are left to encoding/json.
func (p *jsonParser) time(dst *time.Time) bool {
	start := p.i
	if !p.eat('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return dst.UnmarshalJSON(p.b[start:p.i]) == nil
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

// decodeCounter is json.Unmarshal(data, c) on a zero Counter, without
// reflection for the object json.Marshal(Counter) writes.
func decodeCounter(data []byte, c *Counter) error {
	*c = Counter{}
	if fastCounter(data, c) {
		return nil
	}
	*c = Counter{}
	return json.Unmarshal(data, c)
}

func fastCounter(data []byte, c *Counter) bool {
	p := jsonParser{b: data}
	p.ws()
	if !p.eat('{') {
		return false
	}
	p.ws()
	if p.eat('}') {
		return p.end()
	}
	for {
		p.ws()
		key, ok := p.rawKey()
		if !ok {
			return false
		}
		p.ws()
		if !p.eat(':') {
			return false
		}
		p.ws()
		if !p.null() {
			var n int
			switch string(key) {
			case "replies":
				ok = p.int(&c.Replies)
			case "input_tokens":
				ok = p.int(&n)
				c.InputTokens = int64(n)
			case "output_tokens":
				ok = p.int(&n)
				c.OutputTokens = int64(n)
			case "cost":
				ok = p.float(&c.Cost)
			default:
				return false
			}
			if !ok {
				return false
			}
		}
		p.ws()
		if p.eat('}') {
			return p.end()
		}
		if !p.eat(',') {
			return false
		}
	}
}

// encodeCounter returns exactly what json.Marshal(c) returns.
func encodeCounter(c Counter) ([]byte, error) {
	if math.IsNaN(c.Cost) || math.IsInf(c.Cost, 0) {
		return json.Marshal(c) // the error encoding/json reports
	}
	b := make([]byte, 0, 80)
	b = append(b, `{"replies":`...)
	b = strconv.AppendInt(b, int64(c.Replies), 10)
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, c.InputTokens, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, c.OutputTokens, 10)
	b = append(b, `,"cost":`...)
	b = appendJSONFloat(b, c.Cost)
	return append(b, '}'), nil
}

// appendJSONFloat formats f as encoding/json does for a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
