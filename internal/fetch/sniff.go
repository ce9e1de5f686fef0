package fetch

import (
	"bytes"
	"mime"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

// Sniff returns the media type of data, from its bytes first: images, PDF
// and HTML are recognized by their signatures whatever the name or the
// declared type say. Other valid UTF-8 is text: the name's extension and
// the declared type refine it (application/json, text/csv, ...); anything
// else is application/octet-stream.
func Sniff(data []byte, name, declared string) string {
	body := trimBOM(data)
	ct := http.DetectContentType(body)
	base, _, _ := mime.ParseMediaType(ct)
	switch {
	case strings.HasPrefix(base, "image/"), base == "application/pdf":
		return base
	case base == "text/html" || base == "text/xml":
		h := bytes.ToLower(head(body))
		if bytes.Contains(h, []byte("<html")) || bytes.Contains(h, []byte("<!doctype html")) {
			return "text/html"
		}
	}
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		return "application/octet-stream"
	}
	if t := byExtension(name); t != "" {
		return t
	}
	if d, _, err := mime.ParseMediaType(declared); err == nil && IsText(d) && d != "text/html" {
		return d
	}
	return "text/plain"
}

// trimBOM drops a leading UTF-8 byte order mark, which would hide an HTML
// page from http.DetectContentType.
func trimBOM(b []byte) []byte {
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
}

func head(b []byte) []byte {
	if len(b) > 512 {
		return b[:512]
	}
	return b
}

// textExt maps extensions of text-like files to a media type.
var textExt = map[string]string{
	".txt": "text/plain", ".log": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown",
	".csv": "text/csv", ".tsv": "text/tab-separated-values", ".json": "application/json",
	".yaml": "application/yaml", ".yml": "application/yaml", ".xml": "application/xml", ".toml": "text/plain",
	".ini": "text/plain", ".conf": "text/plain", ".cfg": "text/plain", ".env": "text/plain",
	".go": "text/x-go", ".py": "text/x-python", ".js": "text/javascript", ".ts": "text/plain", ".tsx": "text/plain",
	".jsx": "text/plain", ".java": "text/plain", ".c": "text/x-c", ".h": "text/x-c", ".cpp": "text/plain",
	".cc": "text/plain", ".rs": "text/plain", ".rb": "text/plain", ".php": "text/plain", ".sh": "text/x-shellscript",
	".sql": "text/plain", ".html": "text/plain", ".css": "text/css", ".kt": "text/plain", ".swift": "text/plain",
	".diff": "text/plain", ".patch": "text/plain", ".proto": "text/plain", ".tf": "text/plain",
}

func byExtension(name string) string {
	return textExt[strings.ToLower(path.Ext(name))]
}

// IsText reports whether a media type is text-like (inlined for the model).
func IsText(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "text/"):
		return true
	case mt == "application/json", mt == "application/yaml", mt == "application/xml", mt == "application/x-yaml",
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	return false
}

// IsImage reports whether a media type is an image the formats take inline.
func IsImage(mt string) bool {
	switch mt {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return false
}
