package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Files in the fake workspace: tests register files (AddFile) and put the
// returned FileObject into an event's files[]; the bot downloads them from
// url_private / url_private_download on the fake's own host and uploads new
// ones through files.getUploadURLExternal → POST upload_url →
// files.completeUploadExternal.
//
// Downloads follow Slack's rule strictly: only a request with
// "Authorization: Bearer <bot token>" whose token has the files:read scope
// gets the bytes; anything else gets HTTP 200 with Slack's HTML login page.

// FileSpec describes a file a test adds to the workspace.
type FileSpec struct {
	// Name is the file name (default "file.bin").
	Name string
	// MIMEType is the declared media type (default application/octet-stream).
	MIMEType string
	// Data is the file's content.
	Data []byte
	// User is the uploader (default "U1").
	User string
	// NoContentLength serves downloads without a Content-Length header (as
	// a streamed response), so only counting on the wire can stop an
	// oversized download.
	NoContentLength bool
}

// File is a file the fake workspace stores: added by a test or uploaded by
// the bot.
type File struct {
	ID       string
	Name     string
	Title    string
	MIMEType string
	Data     []byte
	User     string
	// Uploaded is true for files uploaded through the external upload flow;
	// Completed once files.completeUploadExternal finished it.
	Uploaded  bool
	Completed bool
	// Shares are where files.completeUploadExternal shared it.
	Shares []FileShare
	// Length is the length declared to files.getUploadURLExternal.
	Length          int
	NoContentLength bool
}

// FileShare is one place an uploaded file was shared.
type FileShare struct {
	Channel  string
	ThreadTS string
	// TS is the ts of the message that shows the file.
	TS string
}

// Download is one request for a file's URL.
type Download struct {
	FileID string
	// Token is the credential presented: "bot", "app", "none" or "invalid".
	Token string
	// LoginPage is true when the fake answered with its HTML login page
	// (no or wrong token, or no files:read scope) instead of the file.
	LoginPage bool
	// Bytes counts the file bytes actually written to the connection.
	Bytes int64
	Time  time.Time
}

// FileObject is a file as Slack shows it in an event's files[] (the fields
// of Slack's file object that matter to bots). Tests may change it, e.g.
// set Mode to "tombstone" or "hidden_by_limit" and clear the URLs.
type FileObject struct {
	ID                 string `json:"id"`
	Created            int64  `json:"created"`
	Timestamp          int64  `json:"timestamp"`
	Name               string `json:"name,omitempty"`
	Title              string `json:"title,omitempty"`
	MIMEType           string `json:"mimetype,omitempty"`
	FileType           string `json:"filetype,omitempty"`
	PrettyType         string `json:"pretty_type,omitempty"`
	User               string `json:"user,omitempty"`
	UserTeam           string `json:"user_team,omitempty"`
	Editable           bool   `json:"editable"`
	Size               int    `json:"size,omitempty"`
	Mode               string `json:"mode"`
	IsExternal         bool   `json:"is_external"`
	ExternalType       string `json:"external_type"`
	IsPublic           bool   `json:"is_public"`
	PublicURLShared    bool   `json:"public_url_shared"`
	DisplayAsBot       bool   `json:"display_as_bot"`
	Username           string `json:"username"`
	URLPrivate         string `json:"url_private,omitempty"`
	URLPrivateDownload string `json:"url_private_download,omitempty"`
	Permalink          string `json:"permalink,omitempty"`
	PermalinkPublic    string `json:"permalink_public,omitempty"`
	HasRichPreview     bool   `json:"has_rich_preview"`
	FileAccess         string `json:"file_access,omitempty"`
}

// Tombstone returns the object as Slack shows a deleted file.
func (f FileObject) Tombstone() FileObject {
	return FileObject{ID: f.ID, Mode: "tombstone", Created: f.Created, Timestamp: f.Timestamp}
}

// loginPage is what Slack answers, with 200, for a file URL without a
// usable token.
const loginPage = `<!DOCTYPE html>
<html lang="en-US" class="supports_custom_scrollbar">
<head><meta charset="utf-8"><title>Slack</title>
<meta name="robots" content="noindex,nofollow"></head>
<body class="full_height"><div id="page"><h1>Sign in to Test Team</h1>
<form id="signin_form" action="/" method="post"><input type="email" name="email">
<input type="password" name="password"><button type="submit">Sign in</button></form></div></body>
</html>
`

// HasScope reports whether the bot token has scope.
func (s *Server) HasScope(scope string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasScopeLocked(scope)
}

func (s *Server) hasScopeLocked(scope string) bool {
	return s.scopes == nil || contains(s.scopes, scope)
}

// SetBotScopes replaces the bot token's scopes (as reinstalling the app
// with another manifest would); nil grants every scope.
func (s *Server) SetBotScopes(scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = nil
	if scopes != nil {
		s.scopes = append([]string{}, scopes...)
	}
}

// AddFile stores a file in the workspace and returns its object for an
// event's files[] (or a shared message's), with URLs on the fake's host.
func (s *Server) AddFile(spec FileSpec) FileObject {
	if spec.Name == "" {
		spec.Name = "file.bin"
	}
	if spec.MIMEType == "" {
		spec.MIMEType = "application/octet-stream"
	}
	if spec.User == "" {
		spec.User = "U1"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &File{ID: s.nextFileIDLocked(), Name: spec.Name, Title: spec.Name, MIMEType: spec.MIMEType,
		Data: append([]byte(nil), spec.Data...), User: spec.User, NoContentLength: spec.NoContentLength}
	s.files[f.ID] = f
	return s.fileObjectLocked(f)
}

func (s *Server) nextFileIDLocked() string {
	s.fileSeq++
	return fmt.Sprintf("F%08d", s.fileSeq)
}

func (s *Server) fileObjectLocked(f *File) FileObject {
	now := time.Now().Unix()
	base := fmt.Sprintf("%s/files-pri/%s-%s/", s.base, s.opts.TeamID, f.ID)
	name := url.PathEscape(f.Name)
	ext := strings.TrimPrefix(path.Ext(f.Name), ".")
	return FileObject{
		ID: f.ID, Created: now, Timestamp: now, Name: f.Name, Title: f.Title, MIMEType: f.MIMEType,
		FileType: ext, PrettyType: strings.ToUpper(ext), User: f.User, UserTeam: s.opts.TeamID, Editable: false,
		Size: len(f.Data), Mode: "hosted", ExternalType: "", URLPrivate: base + name,
		URLPrivateDownload: base + "download/" + name,
		Permalink:          fmt.Sprintf("https://test.slack.com/files/%s/%s/%s", f.User, f.ID, name),
		FileAccess:         "visible",
	}
}

// File returns a stored file.
func (s *Server) File(id string) (File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[id]
	if !ok {
		return File{}, false
	}
	return cloneFile(f), true
}

// Uploads returns the files the bot shared into a channel's thread
// (threadTS "" = the top level), in upload order.
func (s *Server) Uploads(channel, threadTS string) []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, id := range s.uploadOrder {
		f := s.files[id]
		for _, sh := range f.Shares {
			if sh.Channel == channel && sh.ThreadTS == threadTS {
				out = append(out, cloneFile(f))
				break
			}
		}
	}
	return out
}

// Downloads returns the requests for a file's URLs, in order.
func (s *Server) Downloads(fileID string) []Download {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Download
	for _, d := range s.downloads {
		if d.FileID == fileID {
			out = append(out, *d)
		}
	}
	return out
}

// Served returns how many bytes of a file were written to connections in
// all downloads together.
func (s *Server) Served(fileID string) int64 {
	var n int64
	for _, d := range s.Downloads(fileID) {
		n += d.Bytes
	}
	return n
}

func cloneFile(f *File) File {
	c := *f
	c.Data = append([]byte(nil), f.Data...)
	c.Shares = append([]FileShare(nil), f.Shares...)
	return c
}

// handleFile serves /files-pri/<team>-<id>/[download/]<name>.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/files-pri/")
	key, _, _ := strings.Cut(rest, "/")
	_, id, _ := strings.Cut(key, "-")
	token := "none"
	if auth := r.Header.Get("Authorization"); auth != "" {
		switch strings.TrimPrefix(auth, "Bearer ") {
		case s.opts.BotToken:
			token = "bot"
		case s.opts.AppToken:
			token = "app"
		default:
			token = "invalid"
		}
	}
	s.mu.Lock()
	f, ok := s.files[id]
	d := &Download{FileID: id, Token: token, Time: time.Now()}
	if ok {
		s.downloads = append(s.downloads, d)
	}
	allowed := token == "bot" && s.hasScopeLocked("files:read")
	var data []byte
	var noLength bool
	var mt string
	if ok {
		data, noLength, mt = f.Data, f.NoContentLength, f.MIMEType
	}
	s.notifyLocked()
	s.mu.Unlock()

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !allowed {
		// Slack's answer to a missing token or scope: its login page, 200.
		s.mu.Lock()
		d.LoginPage = true
		s.notifyLocked()
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, loginPage)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", mt)
	if !noLength {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	}
	if strings.Contains(rest, "/download/") {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	fl, _ := w.(http.Flusher)
	const chunk = 16 << 10
	for off := 0; off < len(data); off += chunk {
		n, err := w.Write(data[off:min(off+chunk, len(data))])
		s.mu.Lock()
		d.Bytes += int64(n)
		s.mu.Unlock()
		if err != nil {
			break
		}
		if fl != nil {
			fl.Flush()
		}
	}
	s.notify()
}

// files.getUploadURLExternal: filename, length → upload_url, file_id.
func (s *Server) filesGetUploadURLExternal(req apiRequest) (map[string]any, string) {
	if !s.hasScopeLocked("files:write") {
		return nil, "missing_scope"
	}
	name := req.params.Get("filename")
	length, err := strconv.Atoi(req.params.Get("length"))
	if name == "" || err != nil || length <= 0 {
		return nil, "invalid_arguments"
	}
	f := &File{ID: s.nextFileIDLocked(), Name: name, Title: name, User: s.opts.BotUserID, Uploaded: true, Length: length}
	s.files[f.ID] = f
	s.uploadSeq++
	u := fmt.Sprintf("%s/upload/v1/up%d-%s", s.base, s.uploadSeq, f.ID)
	s.uploadURLs[u] = f.ID
	return map[string]any{"upload_url": u, "file_id": f.ID}, ""
}

// handleUpload receives the bytes POSTed to an upload_url, raw or as a
// multipart form, and checks them against the declared length.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	u := s.base + r.URL.Path
	s.mu.Lock()
	id, ok := s.uploadURLs[u]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	data, err := uploadBody(r)
	if err != nil {
		http.Error(w, "bad upload: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	f := s.files[id]
	if len(data) != f.Length {
		s.mu.Unlock()
		http.Error(w, fmt.Sprintf("length mismatch: declared %d, got %d", f.Length, len(data)), http.StatusBadRequest)
		return
	}
	f.Data = data
	s.notifyLocked()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "OK - %d", len(data))
}

func uploadBody(r *http.Request) ([]byte, error) {
	body := io.LimitReader(r.Body, 64<<20)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return io.ReadAll(body)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("no file part: %w", err)
		}
		if p.FileName() != "" {
			return io.ReadAll(p)
		}
	}
}

// files.completeUploadExternal: files [{id,title}], channel_id (or
// channels), thread_ts, initial_comment. Without a channel the file stays
// private, as on Slack.
func (s *Server) filesCompleteUploadExternal(req apiRequest) (map[string]any, string) {
	if !s.hasScopeLocked("files:write") {
		return nil, "missing_scope"
	}
	var list []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(req.params.Get("files")), &list); err != nil || len(list) == 0 {
		return nil, "invalid_arguments"
	}
	var targets []string
	if ch := req.params.Get("channel_id"); ch != "" {
		targets = append(targets, ch)
	}
	if chs := req.params.Get("channels"); chs != "" {
		targets = append(targets, strings.Split(chs, ",")...)
	}
	thread := req.params.Get("thread_ts")
	if thread != "" && len(targets) != 1 {
		return nil, "invalid_arguments" // a thread needs exactly one channel
	}
	var files []*File
	for _, it := range list {
		f, ok := s.files[it.ID]
		if !ok || !f.Uploaded || f.Completed || f.Data == nil {
			return nil, "file_not_found"
		}
		files = append(files, f)
	}
	var out []map[string]any
	for i, f := range files {
		if list[i].Title != "" {
			f.Title = list[i].Title
		}
		f.Completed = true
		s.uploadOrder = append(s.uploadOrder, f.ID)
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	for _, ch := range targets {
		m := &Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: thread, User: s.opts.BotUserID, BotID: s.opts.BotID,
			Text: req.params.Get("initial_comment")}
		for _, f := range files {
			m.Files = append(m.Files, f.ID)
			f.Shares = append(f.Shares, FileShare{Channel: ch, ThreadTS: thread, TS: m.TS})
		}
		s.storeLocked(m)
	}
	return map[string]any{"files": out}, ""
}
