package llm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// MaxImageBytes is the largest generated image a Response keeps (decoded
// size). Larger images are not decoded: they are counted in
// Response.ImagesDropped.
const MaxImageBytes = 20 << 20

// maxResponseImageBytes bounds the images of one response together.
const maxResponseImageBytes = 64 << 20

// maxImageStreamEvent is the SSE event limit for models that generate
// images: an event may carry a whole image of MaxImageBytes as base64, with
// room for the JSON around it. Other models keep maxStreamEvent.
const maxImageStreamEvent = MaxImageBytes/3*4 + 1<<20

// streamEventLimit returns the SSE event limit for a model's stream.
func (c *Client) streamEventLimit(model string) int {
	if generatesImages(c.catalog, model) {
		return maxImageStreamEvent
	}
	return maxStreamEvent
}

// generatesImages reports whether a model makes images: "image" in its id
// (gemini-2.5-flash-image, gpt-image-1), or a catalog record of type image
// or with a feature about image output (image_generation, text_to_image).
func generatesImages(cat *Catalog, model string) bool {
	if strings.Contains(strings.ToLower(model), "image") {
		return true
	}
	if cat == nil {
		return false
	}
	m, ok := cat.Lookup(model)
	if !ok {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(m.Type), "image") {
		return true
	}
	for _, f := range m.Features {
		lf := strings.ToLower(f)
		if strings.Contains(lf, "image") && (strings.Contains(lf, "generat") || strings.Contains(lf, "output") ||
			strings.Contains(lf, "to_image") || strings.Contains(lf, "to-image") || strings.Contains(lf, "to image")) {
			return true
		}
	}
	return false
}

// b64image is a base64 JSON string decoded straight into bytes, without the
// intermediate string. A value that would decode to more than MaxImageBytes
// is not decoded (tooBig); one that is not base64 sets bad. Neither fails
// the JSON decoding: an unusable image must not lose the answer's text.
type b64image struct {
	data   []byte
	tooBig bool
	bad    bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *b64image) UnmarshalJSON(b []byte) error {
	*d = b64image{}
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		d.bad = true
		return nil
	}
	s := b[1 : len(b)-1]
	// Every 4 characters decode to at most 3 bytes; padding and line
	// breaks only lower that.
	if base64.RawStdEncoding.DecodedLen(len(s)) > MaxImageBytes+2 {
		d.tooBig = true
		return nil
	}
	if bytes.IndexByte(s, '\\') >= 0 { // escaped line breaks or slashes
		var str string
		if json.Unmarshal(b, &str) != nil {
			d.bad = true
			return nil
		}
		s = []byte(str)
	}
	dst := make([]byte, base64.RawStdEncoding.DecodedLen(len(s))) // enough with or without padding
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if n, err := enc.Decode(dst, s); err == nil {
			if n > MaxImageBytes {
				d.tooBig = true
				return nil
			}
			d.data = dst[:n:n]
			return nil
		}
	}
	d.bad = true
	return nil
}

// addImage keeps a generated image, or counts it as dropped when it is too
// large, undecodable or empty.
func (st *streamState) addImage(mime string, d *b64image) {
	total := len(d.data)
	for _, im := range st.resp.Images {
		total += len(im.Data)
	}
	if d.tooBig || d.bad || len(d.data) == 0 || total > maxResponseImageBytes {
		st.resp.ImagesDropped++
		st.c.log.Warn("llm: generated image dropped", "too_big", d.tooBig || total > maxResponseImageBytes, "undecodable", d.bad,
			"request_id", st.reqID)
		return
	}
	if mime = strings.ToLower(strings.TrimSpace(mime)); mime == "" || mime == "application/octet-stream" {
		mime = http.DetectContentType(d.data)
		if !strings.HasPrefix(mime, "image/") {
			mime = "image/png"
		}
	}
	st.resp.Images = append(st.resp.Images, Image{MIMEType: mime, Data: d.data})
	st.progress() // an image is content for the stall watchdog
}

// geminiBlobOut is an inline blob in a Gemini answer, in either spelling.
type geminiBlobOut struct {
	MIMEType      string   `json:"mimeType"`
	MIMETypeSnake string   `json:"mime_type"`
	Data          b64image `json:"data"`
}

func (b *geminiBlobOut) mime() string {
	if b.MIMEType != "" {
		return b.MIMEType
	}
	return b.MIMETypeSnake
}

// responsesImageItem is an output item of a Responses stream event: an
// image_generation_call (with its result), a function_call (call_id, name,
// arguments) or a message (its content's annotations).
type responsesImageItem struct {
	Type         string   `json:"type"`
	ID           string   `json:"id"`
	Result       b64image `json:"result"`
	OutputFormat string   `json:"output_format"`

	CallID    string             `json:"call_id"`
	Name      string             `json:"name"`
	Arguments fragment           `json:"arguments"`
	Content   []responsesOutText `json:"content"`
}

func (it *responsesImageItem) mime() string {
	switch f := strings.ToLower(it.OutputFormat); f {
	case "":
		return ""
	case "jpg":
		return "image/jpeg"
	default:
		return "image/" + f
	}
}

// responsesOutputImages adds the image_generation_call items of a Responses
// output list (a whole answer, or the response of response.completed).
func responsesOutputImages(st *streamState, output []responsesImageItem) {
	for i := range output {
		if it := &output[i]; it.Type == "image_generation_call" {
			st.addImage(it.mime(), &it.Result)
		}
	}
}

var imageCallKey = []byte(`"image_generation_call"`)
