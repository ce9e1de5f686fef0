package llm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// reqBody is an encoded request: JSON text with the attachments' bytes
// spliced in as base64 while the body is read. The base64 text of an
// attachment never exists in memory as a whole, so a turn carrying an
// attachment of n bytes holds little more than those n bytes.
type reqBody struct {
	segs []bodySeg
	size int64
}

// bodySeg is a piece of a body: literal JSON text, or raw bytes that are
// sent as standard (padded) base64.
type bodySeg struct {
	b   []byte
	b64 bool
}

// blobs collects the binary payloads of one request while it is encoded.
// Each payload is represented in the JSON by a placeholder that cannot occur
// in user text (it carries a random nonce) and is replaced by the streamed
// base64 when the body is read.
type blobs struct {
	nonce string
	raw   [][]byte
}

func (bl *blobs) add(data []byte) string {
	if bl.nonce == "" {
		bl.nonce = strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
	}
	bl.raw = append(bl.raw, data)
	return bl.placeholder(len(bl.raw) - 1)
}

func (bl *blobs) placeholder(i int) string {
	return "@blob:" + bl.nonce + ":" + strconv.Itoa(i) + "@"
}

// dataURL returns a data: URL whose base64 payload is data.
func (bl *blobs) dataURL(mime string, data []byte) string {
	return "data:" + mime + ";base64," + bl.add(data)
}

// body marshals v and splices the payloads in for their placeholders.
func (bl *blobs) body(v any) (*reqBody, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(bl.raw) == 0 {
		return &reqBody{segs: []bodySeg{{b: js}}, size: int64(len(js))}, nil
	}
	type at struct{ pos, i int }
	ats := make([]at, len(bl.raw))
	for i := range bl.raw {
		ph := bl.placeholder(i)
		p := bytes.Index(js, []byte(ph))
		if p < 0 || bytes.Contains(js[p+len(ph):], []byte(ph)) {
			return nil, errors.New("attachment placeholder lost in encoding")
		}
		ats[i] = at{p, i}
	}
	slices.SortFunc(ats, func(a, b at) int { return a.pos - b.pos })
	rb := &reqBody{segs: make([]bodySeg, 0, 2*len(ats)+1)}
	last := 0
	for _, a := range ats {
		rb.segs = append(rb.segs, bodySeg{b: js[last:a.pos]}, bodySeg{b: bl.raw[a.i], b64: true})
		last = a.pos + len(bl.placeholder(a.i))
	}
	rb.segs = append(rb.segs, bodySeg{b: js[last:]})
	for _, s := range rb.segs {
		rb.size += s.len()
	}
	return rb, nil
}

func (s bodySeg) len() int64 {
	if s.b64 {
		return int64(base64.StdEncoding.EncodedLen(len(s.b)))
	}
	return int64(len(s.b))
}

// reader returns a new reader of the whole body.
func (rb *reqBody) reader() io.ReadCloser { return &bodyReader{segs: rb.segs} }

// attach sets r's body, ContentLength and GetBody (so that the transport
// can replay the body).
func (rb *reqBody) attach(r *http.Request) {
	r.Body = rb.reader()
	r.ContentLength = rb.size
	r.GetBody = func() (io.ReadCloser, error) { return rb.reader(), nil }
}

// bytes renders the whole body (for tests and logs of small bodies).
func (rb *reqBody) bytes() []byte {
	b, _ := io.ReadAll(rb.reader())
	return b
}

// bodyReader reads a reqBody, base64-encoding raw segments on the fly.
type bodyReader struct {
	segs   []bodySeg
	i, off int
	tail   [4]byte // encoded bytes of a group that did not fit in p
	tp, tn int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.tp < r.tn {
			c := copy(p[n:], r.tail[r.tp:r.tn])
			r.tp += c
			n += c
			continue
		}
		if r.i >= len(r.segs) {
			break
		}
		s := r.segs[r.i]
		rest := s.b[r.off:]
		if len(rest) == 0 {
			r.i, r.off = r.i+1, 0
			continue
		}
		if !s.b64 {
			c := copy(p[n:], rest)
			r.off += c
			n += c
			continue
		}
		room := len(p) - n
		if room < 4 {
			k := min(3, len(rest))
			base64.StdEncoding.Encode(r.tail[:], rest[:k])
			r.tp, r.tn = 0, base64.StdEncoding.EncodedLen(k)
			r.off += k
			continue
		}
		// Whole 3-byte groups, or the rest (whose padded encoding fits).
		k := min(room/4*3, len(rest))
		base64.StdEncoding.Encode(p[n:], rest[:k])
		n += base64.StdEncoding.EncodedLen(k)
		r.off += k
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Close implements io.Closer.
func (r *bodyReader) Close() error { return nil }

// mime returns the image's MIME type: its own, else sniffed from the bytes
// or guessed from the URL's extension, else image/jpeg.
func (im Image) mime() string {
	if im.MIMEType != "" {
		return im.MIMEType
	}
	if im.URL != "" {
		if u, err := url.Parse(im.URL); err == nil {
			switch strings.ToLower(path.Ext(u.Path)) {
			case ".png":
				return "image/png"
			case ".gif":
				return "image/gif"
			case ".webp":
				return "image/webp"
			}
		}
	}
	if len(im.Data) > 0 {
		if ct := http.DetectContentType(im.Data); strings.HasPrefix(ct, "image/") {
			return ct
		}
	}
	return "image/jpeg"
}

// mime returns the file's MIME type: its own, else sniffed, else
// application/pdf.
func (f File) mime() string {
	if f.MIMEType != "" {
		return f.MIMEType
	}
	if len(f.Data) > 0 {
		if ct, _, _ := strings.Cut(http.DetectContentType(f.Data), ";"); ct != "application/octet-stream" {
			return ct
		}
	}
	return "application/pdf"
}

// name returns the file's name, or "document.pdf" (chat and responses
// require a file name).
func (f File) name() string {
	if f.Name != "" {
		return f.Name
	}
	if f.mime() == "application/pdf" {
		return "document.pdf"
	}
	return "document"
}
