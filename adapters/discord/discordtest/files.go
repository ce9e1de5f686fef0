package discordtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Files: the fake's CDN, attachments on injected messages, forwards, and
// multipart uploads.
//
// Discord serves attachments from its CDN (cdn.discordapp.com, proxied by
// media.discordapp.net) under /attachments/{channel}/{attachment}/{filename}
// with signed, expiring query parameters (ex, is, hm) and no authorization.
// The fake serves them on its own host under the same path, checks the
// signature (an unsigned or altered link gets Discord's 404 "This content is
// no longer available."), counts the bytes it manages to write per file, and
// records every request, so tests can assert that an over-limit download was
// cut and that no token was sent.

// DefaultUploadLimit is the bytes of files one message may carry unless
// Options.UploadLimit says otherwise: Discord's 10 MiB for servers without
// boosts.
const DefaultUploadLimit = 10 << 20

// maxFilesPerMessage is Discord's cap on files[n] parts in one message.
const maxFilesPerMessage = 10

// CDNFile is a file to put on the fake's CDN (see AddAttachment).
type CDNFile struct {
	// ChannelID is the channel the file was posted in (part of its path).
	ChannelID string
	// Name is the file name as uploaded; ContentType the type Discord declares.
	Name        string
	ContentType string
	Data        []byte
	// DeclaredSize overrides the size in the attachment object (0: len(Data)).
	DeclaredSize int64
	// NoLength serves the file without Content-Length, in 32 KiB chunks, so
	// that a client has to count the bytes on the wire.
	NoLength bool
}

// Attachment is a file on the fake's CDN as a message carries it.
type Attachment struct {
	ID          string
	ChannelID   string
	Filename    string
	ContentType string
	Size        int64
	// URL and ProxyURL are signed links on the fake's host.
	URL      string
	ProxyURL string
}

// File is a file the bot uploaded with a message (files[n]).
type File struct {
	// Field is the form field, e.g. "files[0]"; Name the part's filename.
	Field       string
	Name        string
	ContentType string
	Data        []byte
	// Description is the attachments[] entry's description, if any.
	Description string
}

// CDNRequest is one request the CDN answered, recorded once the answer
// is over (written in full, or cut off by the client).
type CDNRequest struct {
	Method string
	Path   string
	// Authorization is true when the request carried an Authorization
	// header (Discord's CDN needs none: a client must never send its token).
	Authorization bool
	Status        int
	// Bytes is how much of the file this answer wrote before it ended.
	Bytes int64
}

// Snapshot is a forwarded message as Discord puts it in a forward's
// message_snapshots: content, attachments, embeds and a timestamp, and no
// author. MessageID, ChannelID and GuildID fill the forward's
// message_reference; an empty MessageID gets a fresh id (the original is
// then a message the bot cannot read, e.g. in someone else's DM).
type Snapshot struct {
	MessageID, ChannelID, GuildID string
	Content                       string
	Attachments                   []Attachment
	// Embeds are raw embed objects, e.g. {"type":"rich","title":"..."}.
	Embeds    []map[string]any
	Timestamp time.Time
}

type cdnEntry struct {
	path     string // escaped path, as signed
	att      Attachment
	data     []byte
	noLength bool
	served   int64
}

// cdnSecret signs CDN links; fixed, since only the fake checks them.
var cdnSecret = []byte("discordtest-cdn")

func cdnSign(path, ex, is string) string {
	m := hmac.New(sha256.New, cdnSecret)
	m.Write([]byte(path + "|" + ex + "|" + is))
	return hex.EncodeToString(m.Sum(nil))
}

// cdnURL returns a signed link for path on the fake's host.
func (s *Server) cdnURL(path string) string {
	now := time.Now()
	ex := strconv.FormatInt(now.Add(24*time.Hour).Unix(), 16)
	is := strconv.FormatInt(now.Unix(), 16)
	q := url.Values{"ex": {ex}, "is": {is}, "hm": {cdnSign(path, ex, is)}}
	return s.URL + path + "?" + q.Encode()
}

// AddAttachment puts a file on the fake's CDN and returns the attachment
// object for a Post (or a Snapshot).
func (s *Server) AddAttachment(f CDNFile) Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addAttachmentLocked(f)
}

func (s *Server) addAttachmentLocked(f CDNFile) Attachment {
	id := s.newIDLocked()
	name := f.Name
	if name == "" {
		name = "file"
	}
	path := "/attachments/" + f.ChannelID + "/" + id + "/" + url.PathEscape(name)
	size := f.DeclaredSize
	if size == 0 {
		size = int64(len(f.Data))
	}
	link := s.cdnURL(path)
	att := Attachment{ID: id, ChannelID: f.ChannelID, Filename: name, ContentType: f.ContentType, Size: size, URL: link, ProxyURL: link}
	s.cdn[path] = &cdnEntry{path: path, att: att, data: append([]byte(nil), f.Data...), noLength: f.NoLength}
	return att
}

// BytesServed returns how many bytes of the attachment the CDN has written
// to clients so far (all requests together).
func (s *Server) BytesServed(attachmentID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.cdn {
		if e.att.ID == attachmentID {
			return e.served
		}
	}
	return 0
}

// CDNRequests returns every request the CDN answered.
func (s *Server) CDNRequests() []CDNRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CDNRequest(nil), s.cdnCalls...)
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := http.StatusOK
	s.mu.Lock()
	e := s.cdn[r.URL.EscapedPath()]
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		status = http.StatusMethodNotAllowed
	case e == nil || q.Get("hm") == "" || !hmac.Equal([]byte(q.Get("hm")), []byte(cdnSign(e.path, q.Get("ex"), q.Get("is")))):
		status = http.StatusNotFound
	}
	s.mu.Unlock()
	rec := CDNRequest{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization") != "", Status: status}
	defer func() {
		s.mu.Lock()
		s.cdnCalls = append(s.cdnCalls, rec)
		s.notifyLocked()
		s.mu.Unlock()
	}()
	if status != http.StatusOK {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "This content is no longer available.")
		return
	}
	h := w.Header()
	ct := e.att.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if !e.noLength {
		h.Set("Content-Length", strconv.Itoa(len(e.data)))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	fl, _ := w.(http.Flusher)
	for off := 0; off < len(e.data); {
		end := min(off+32<<10, len(e.data))
		n, err := w.Write(e.data[off:end])
		rec.Bytes += int64(n)
		s.mu.Lock()
		e.served += int64(n)
		s.mu.Unlock()
		if err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		off = end
	}
}

// attachmentJSON renders an attachment object as Discord sends it.
func attachmentJSON(a Attachment) map[string]any {
	out := map[string]any{"id": a.ID, "filename": a.Filename, "size": a.Size, "url": a.URL, "proxy_url": a.ProxyURL}
	if a.ContentType != "" {
		out["content_type"] = a.ContentType
	}
	return out
}

func attachmentsJSON(as []Attachment) []any {
	out := []any{}
	for _, a := range as {
		out = append(out, attachmentJSON(a))
	}
	return out
}

// snapshotJSON renders a forward's message_snapshots entry: Discord's
// snapshot message is a subset of a message without author or ids.
func snapshotJSON(sn Snapshot) map[string]any {
	embeds := []any{}
	for _, e := range sn.Embeds {
		embeds = append(embeds, e)
	}
	ts := sn.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	return map[string]any{"message": map[string]any{
		"type": 0, "content": sn.Content, "embeds": embeds, "attachments": attachmentsJSON(sn.Attachments),
		"timestamp": ts.UTC().Format(time.RFC3339Nano), "edited_timestamp": nil, "flags": 0,
		"mentions": []any{}, "mention_roles": []any{}, "components": []any{},
	}}
}

// Snapshot returns a snapshot of a stored message, as a forward of it
// would carry it.
func (s *Server) Snapshot(messageID string) (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[messageID]
	if !ok || m.Deleted {
		return Snapshot{}, false
	}
	return Snapshot{MessageID: m.ID, ChannelID: m.ChannelID, GuildID: m.GuildID, Content: m.Content,
		Attachments: append([]Attachment(nil), m.Attachments...), Timestamp: m.Created}, true
}

// getMessage answers GET /channels/{id}/messages/{mid}.
func (s *Server) getMessage(channel, id string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channels[channel]; !ok {
		return jsonErr(http.StatusNotFound, 10003, "Unknown Channel")
	}
	m, ok := s.messages[id]
	if !ok || m.Deleted || m.ChannelID != channel {
		return jsonErr(http.StatusNotFound, 10008, "Unknown Message")
	}
	return reply{body: s.messageJSONLocked(m, true)}
}

// multipartMessage is a decoded multipart/form-data message body.
type multipartMessage struct {
	payload []byte
	files   []File
}

// errForm is a refused form; the reply says why, as Discord would.
type errForm struct{ rep reply }

func (e errForm) Error() string { return fmt.Sprint(e.rep.body) }

func formError(field, code, msg string) error {
	return errForm{reply{status: http.StatusBadRequest, body: map[string]any{
		"code": 50035, "message": "Invalid Form Body",
		"errors": map[string]any{field: map[string]any{"_errors": []any{map[string]any{"code": code, "message": msg}}}},
	}}}
}

// decodeMultipart reads a message sent as multipart/form-data: one
// payload_json part (JSON) and files[n] parts, each with a filename. Parts
// with other names are refused (a bot sending them is confused), as are
// duplicate names, more than 10 files and files over limit bytes in total
// (Discord answers 413 with code 40005).
func decodeMultipart(contentType string, body []byte, limit int64) (multipartMessage, error) {
	var out multipartMessage
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return out, errForm{jsonErr(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")}
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	seen := map[string]bool{}
	var total int64
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, formError("_form", "MULTIPART_INVALID", "Malformed multipart body: "+err.Error())
		}
		name := p.FormName()
		if seen[name] {
			return out, formError(name, "DUPLICATE_FIELD", "Duplicate form field.")
		}
		seen[name] = true
		data, err := io.ReadAll(p)
		if err != nil {
			return out, formError(name, "MULTIPART_INVALID", "Malformed multipart body.")
		}
		switch {
		case name == "payload_json":
			out.payload = data
		case fileIndex(name) >= 0:
			if p.FileName() == "" {
				return out, formError(name, "FILE_NAME_REQUIRED", "Files must have a filename.")
			}
			total += int64(len(data))
			if total > limit {
				return out, errForm{jsonErr(http.StatusRequestEntityTooLarge, 40005, "Request entity too large")}
			}
			out.files = append(out.files, File{Field: name, Name: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data})
		default:
			return out, formError(name, "UNKNOWN_FIELD", "Unexpected form field.")
		}
	}
	if len(out.files) > maxFilesPerMessage {
		return out, formError("files", "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", maxFilesPerMessage))
	}
	if out.payload == nil {
		out.payload = []byte("{}")
	}
	return out, nil
}

// fileIndex returns n for a form field "files[n]", else -1.
func fileIndex(field string) int {
	inner, ok := strings.CutPrefix(field, "files[")
	if !ok {
		return -1
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok || inner == "" {
		return -1
	}
	n, err := strconv.Atoi(inner)
	if err != nil || n < 0 || strconv.Itoa(n) != inner {
		return -1
	}
	return n
}

// uploadAttachment is an attachments[] entry of a message being sent.
type uploadAttachment struct {
	ID          json.Number `json:"id"`
	Filename    string      `json:"filename"`
	Description string      `json:"description"`
}

// matchAttachments pairs the payload's attachments[] with the files[n]
// parts. Every entry must name an uploaded part by its placeholder n
// (Discord refuses unknown ones). When attachments[] is present, every
// file must be listed in it: Discord keeps only listed files on edits, and
// the fake holds posts to the same rule so that a file can never be dropped
// quietly. Without attachments[], every file is attached (Discord's
// original behaviour). A listed filename renames the file.
func matchAttachments(entries []uploadAttachment, listed bool, files []File) ([]File, error) {
	if !listed {
		return files, nil
	}
	byField := map[string]int{}
	for i, f := range files {
		byField[f.Field] = i
	}
	used := make([]bool, len(files))
	for i, e := range entries {
		n, err := strconv.Atoi(e.ID.String())
		if err != nil || n < 0 {
			return nil, formError(fmt.Sprintf("attachments.%d.id", i), "ATTACHMENT_NOT_FOUND", "Unknown attachment placeholder.")
		}
		j, ok := byField["files["+strconv.Itoa(n)+"]"]
		if !ok {
			return nil, formError(fmt.Sprintf("attachments.%d", i), "ATTACHMENT_NOT_FOUND", fmt.Sprintf("No file was uploaded for attachment %d.", n))
		}
		if used[j] {
			return nil, formError(fmt.Sprintf("attachments.%d", i), "DUPLICATE_ATTACHMENT", "Attachment listed twice.")
		}
		used[j] = true
		if e.Filename != "" {
			files[j].Name = e.Filename
		}
		files[j].Description = e.Description
	}
	for j, f := range files {
		if !used[j] {
			return nil, formError("attachments", "ATTACHMENT_NOT_LISTED", fmt.Sprintf("%s has no attachments entry.", f.Field))
		}
	}
	return files, nil
}
