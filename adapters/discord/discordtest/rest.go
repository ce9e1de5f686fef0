package discordtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

const apiPrefix = "/api/v9"

// reply is a REST answer built under the lock and written after it.
type reply struct {
	status  int
	body    any // marshalled as JSON unless nil
	headers map[string]string
	after   func() // runs after the answer is written (dispatches)
}

func jsonErr(status, code int, msg string) reply {
	return reply{status: status, body: map[string]any{"code": code, "message": msg}}
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	authorized := r.Header.Get("Authorization") == "Bot "+s.opts.Token
	contentType := r.Header.Get("Content-Type")
	var rep reply
	if !ok {
		rep = jsonErr(http.StatusNotFound, 0, "404: Not Found")
	} else {
		rep = s.route(r.Method, path, contentType, body, authorized)
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	var after Fault
	if rep.status < 300 {
		after = s.takeAfterFault(r.Method, path)
	}
	s.mu.Lock()
	if len(s.calls) >= s.opts.MaxCalls {
		s.calls = append(s.calls[:0], s.calls[len(s.calls)-s.opts.MaxCalls/2:]...)
	}
	s.calls = append(s.calls, Call{
		Time: time.Now(), Method: r.Method, Path: path, Query: r.URL.RawQuery,
		Body: body, ContentType: contentType, Payload: payloadOf(contentType, body),
		Status: rep.status, Authorized: authorized, Fault: after,
	})
	if rep.status == http.StatusTooManyRequests {
		s.limited++
	}
	s.notifyLocked()
	s.mu.Unlock()

	if after != "" {
		injectFault(w, after)
		if rep.after != nil {
			rep.after()
		}
		return
	}
	h := w.Header()
	for k, v := range rep.headers {
		h.Set(k, v)
	}
	if h.Get("X-RateLimit-Limit") == "" {
		h.Set("X-RateLimit-Limit", "50")
		h.Set("X-RateLimit-Remaining", "49")
		h.Set("X-RateLimit-Reset-After", "1.000")
		h.Set("X-RateLimit-Reset", resetAt(time.Second))
		h.Set("X-RateLimit-Bucket", "fake-"+strings.SplitN(strings.TrimPrefix(path, "/"), "/", 2)[0])
	}
	if rep.body != nil {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_ = json.NewEncoder(w).Encode(rep.body)
	} else {
		w.WriteHeader(rep.status)
	}
	if rep.after != nil {
		rep.after()
	}
}

func resetAt(d time.Duration) string {
	t := float64(time.Now().Add(d).UnixNano()) / 1e9
	return strconv.FormatFloat(t, 'f', 3, 64)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

func match(segs []string, pattern ...string) bool {
	if len(segs) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != "*" && p != segs[i] {
			return false
		}
	}
	return true
}

// payloadOf returns the JSON of a request body: the body itself, or the
// payload_json part of a multipart/form-data body (nil when absent).
func payloadOf(contentType string, body []byte) []byte {
	if !isMultipart(contentType) {
		return body
	}
	mm, err := decodeMultipart(contentType, body, math.MaxInt64)
	if err != nil {
		return nil
	}
	return mm.payload
}

func isMultipart(contentType string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "multipart/form-data")
}

func (s *Server) route(method, path, contentType string, body []byte, authorized bool) reply {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	webhook := len(segs) > 0 && (segs[0] == "webhooks" || segs[0] == "interactions")
	if !authorized && !webhook {
		return jsonErr(http.StatusUnauthorized, 0, "401: Unauthorized")
	}
	if rep, ok := s.takeFault(method, path); ok {
		return rep
	}
	switch {
	case method == http.MethodGet && match(segs, "gateway"):
		ws := "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway"
		return reply{body: map[string]any{"url": ws}}
	case method == http.MethodGet && match(segs, "users", "@me"):
		return reply{body: userJSON(s.botUser())}
	case method == http.MethodGet && match(segs, "channels", "*"):
		return s.getChannel(segs[1])
	case method == http.MethodPost && match(segs, "channels", "*", "typing"):
		s.mu.Lock()
		_, ok := s.channels[segs[1]]
		s.mu.Unlock()
		if !ok {
			return jsonErr(http.StatusNotFound, 10003, "Unknown Channel")
		}
		return reply{status: http.StatusNoContent}
	case method == http.MethodPost && match(segs, "channels", "*", "messages"):
		return s.limitWrite(segs[1], func() reply { return s.createMessage(segs[1], contentType, body) })
	case method == http.MethodGet && match(segs, "channels", "*", "messages", "*"):
		return s.getMessage(segs[1], segs[3])
	case method == http.MethodPatch && match(segs, "channels", "*", "messages", "*"):
		return s.limitWrite(segs[1], func() reply { return s.editMessage(segs[1], segs[3], body) })
	case method == http.MethodDelete && match(segs, "channels", "*", "messages", "*"):
		return s.limitWrite(segs[1], func() reply { return s.deleteMessage(segs[1], segs[3]) })
	case method == http.MethodPost && match(segs, "channels", "*", "messages", "*", "threads"):
		return s.startThread(segs[1], segs[3], body)
	case method == http.MethodPut && match(segs, "applications", "*", "commands"):
		return s.putCommands(segs[1], "", body)
	case method == http.MethodPut && match(segs, "applications", "*", "guilds", "*", "commands"):
		return s.putCommands(segs[1], segs[3], body)
	case method == http.MethodPost && match(segs, "interactions", "*", "*", "callback"):
		return s.callback(segs[1], segs[2], body)
	case method == http.MethodPatch && match(segs, "webhooks", "*", "*", "messages", "@original"):
		return s.editOriginal(segs[1], segs[2], body)
	case method == http.MethodDelete && match(segs, "webhooks", "*", "*", "messages", "@original"):
		return s.deleteOriginal(segs[1], segs[2])
	case method == http.MethodPost && match(segs, "webhooks", "*", "*"):
		return s.followup(segs[1], segs[2], body)
	}
	return jsonErr(http.StatusNotFound, 0, "404: Not Found")
}

// injectFault fails the transport of an answer.
func injectFault(w http.ResponseWriter, f Fault) {
	if f == FaultBadResponse {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"id":"1100`))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("discordtest: response writer cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST
	}
	_ = conn.Close()
}

// takeAfterFault returns (and removes) the first transport fault queued for
// a request that took effect.
func (s *Server) takeAfterFault(method, path string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	fire := -1
	for i := range s.faults {
		f := &s.faults[i]
		if f.after == "" || f.method != method || !strings.Contains(path, f.path) {
			continue
		}
		if f.skip > 0 {
			f.skip--
			continue
		}
		if fire < 0 {
			fire = i
		}
	}
	if fire < 0 {
		return ""
	}
	f := s.faults[fire]
	s.faults = append(s.faults[:fire], s.faults[fire+1:]...)
	return f.after
}

func (s *Server) takeFault(method, path string) (reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.after != "" || f.method != method || !strings.Contains(path, f.path) {
			continue
		}
		s.faults = append(s.faults[:i], s.faults[i+1:]...)
		if f.status == http.StatusTooManyRequests {
			return tooMany(f.retryAfter, false), true
		}
		if f.body != "" {
			return reply{status: f.status, body: json.RawMessage(f.body)}, true
		}
		return jsonErr(f.status, 0, http.StatusText(f.status)), true
	}
	return reply{}, false
}

func tooMany(retry time.Duration, global bool) reply {
	return reply{
		status: http.StatusTooManyRequests,
		body:   map[string]any{"message": "You are being rate limited.", "retry_after": math.Round(retry.Seconds()*1000) / 1000, "global": global},
		headers: map[string]string{
			"Retry-After":             strconv.Itoa(int(math.Ceil(retry.Seconds()))),
			"X-RateLimit-Limit":       "5",
			"X-RateLimit-Remaining":   "0",
			"X-RateLimit-Reset-After": seconds(retry),
			"X-RateLimit-Reset":       resetAt(retry),
			"X-RateLimit-Scope":       "user",
		},
	}
}

// limitWrite enforces the per-channel write budget (sliding window) and adds
// the bucket's headers.
func (s *Server) limitWrite(channel string, do func() reply) reply {
	budget, window := s.opts.WriteBudget, s.opts.WriteWindow
	if budget < 0 {
		return do()
	}
	now := time.Now()
	s.mu.Lock()
	ts := s.recent[channel]
	for len(ts) > 0 && now.Sub(ts[0]) >= window {
		ts = ts[1:]
	}
	if len(ts) >= budget {
		s.recent[channel] = ts
		s.mu.Unlock()
		return tooMany(ts[0].Add(window).Sub(now), false)
	}
	ts = append(ts, now)
	s.recent[channel] = ts
	resetIn := ts[0].Add(window).Sub(now)
	remaining := budget - len(ts)
	s.mu.Unlock()
	rep := do()
	s.mu.Lock()
	if rep.status >= 200 && rep.status < 300 || rep.status == 0 {
		wl := s.writeLog[channel]
		if len(wl) >= s.opts.MaxCalls {
			wl = append(wl[:0], wl[len(wl)-s.opts.MaxCalls/2:]...)
		}
		s.writeLog[channel] = append(wl, now)
	} else {
		// A refused write (bad body, unknown message) does not use the budget.
		rec := s.recent[channel]
		for i := len(rec) - 1; i >= 0; i-- {
			if rec[i].Equal(now) {
				s.recent[channel] = append(rec[:i:i], rec[i+1:]...)
				break
			}
		}
		remaining++
	}
	s.mu.Unlock()
	if rep.headers == nil {
		rep.headers = map[string]string{}
	}
	rep.headers["X-RateLimit-Limit"] = strconv.Itoa(budget)
	rep.headers["X-RateLimit-Remaining"] = strconv.Itoa(remaining)
	rep.headers["X-RateLimit-Reset-After"] = seconds(resetIn)
	rep.headers["X-RateLimit-Reset"] = resetAt(resetIn)
	rep.headers["X-RateLimit-Bucket"] = "messages-" + channel
	return rep
}

func (s *Server) getChannel(id string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return jsonErr(http.StatusNotFound, 10003, "Unknown Channel")
	}
	return reply{body: channelJSON(c)}
}

type writeBody struct {
	Content          *string            `json:"content"`
	Attachments      []uploadAttachment `json:"attachments"`
	AllowedMentions  json.RawMessage    `json:"allowed_mentions"`
	MessageReference *json.RawMessage   `json:"message_reference"`
	Flags            int                `json:"flags"`
	Nonce            json.RawMessage    `json:"nonce"`
	EnforceNonce     bool               `json:"enforce_nonce"`
}

// parseNonce validates a nonce as Discord does: an integer or a string of
// at most 25 characters.
func parseNonce(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		return str, len([]rune(str)) <= 25
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if _, err := n.Int64(); err == nil {
			return n.String(), true
		}
	}
	return "", false
}

func checkContent(content string) (reply, bool) {
	if strings.TrimSpace(content) == "" {
		return jsonErr(http.StatusBadRequest, 50006, "Cannot send an empty message"), false
	}
	if n := len(utf16.Encode([]rune(content))); n > 2000 {
		return reply{status: http.StatusBadRequest, body: map[string]any{
			"code": 50035, "message": "Invalid Form Body",
			"errors": map[string]any{"content": map[string]any{"_errors": []any{map[string]any{
				"code": "BASE_TYPE_MAX_LENGTH", "message": fmt.Sprintf("Must be 2000 or fewer in length (got %d).", n)}}}},
		}}, false
	}
	return reply{}, true
}

// createMessage answers POST /channels/{id}/messages: a JSON body, or a
// multipart/form-data body with payload_json and files[n] (see
// decodeMultipart and matchAttachments). A message needs content or files.
func (s *Server) createMessage(channel, contentType string, body []byte) reply {
	var files []File
	if isMultipart(contentType) {
		mm, err := decodeMultipart(contentType, body, s.opts.UploadLimit)
		if err != nil {
			var fe errForm
			if errors.As(err, &fe) {
				return fe.rep
			}
			return jsonErr(http.StatusBadRequest, 50035, "Invalid Form Body")
		}
		body, files = mm.payload, mm.files
	}
	var wb writeBody
	if err := json.Unmarshal(body, &wb); err != nil {
		return jsonErr(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
	}
	files, err := matchAttachments(wb.Attachments, wb.Attachments != nil, files)
	if err != nil {
		var fe errForm
		errors.As(err, &fe)
		return fe.rep
	}
	content := ""
	if wb.Content != nil {
		content = *wb.Content
	}
	if content != "" || len(files) == 0 {
		if rep, ok := checkContent(content); !ok {
			return rep
		}
	}
	nonce, ok := parseNonce(wb.Nonce)
	if !ok {
		return reply{status: http.StatusBadRequest, body: map[string]any{
			"code": 50035, "message": "Invalid Form Body",
			"errors": map[string]any{"nonce": map[string]any{"_errors": []any{map[string]any{
				"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 25 in length."}}}},
		}}
	}
	s.mu.Lock()
	c, ok := s.channels[channel]
	if !ok {
		s.mu.Unlock()
		return jsonErr(http.StatusNotFound, 10003, "Unknown Channel")
	}
	nk := nonceKey{channel: channel, author: s.opts.BotID, nonce: nonce}
	if e, seen := s.nonces[nk]; nonce != "" && wb.EnforceNonce && seen && time.Since(e.at) < s.opts.NonceWindow {
		// The message already created with this nonce, and no new one.
		out := s.messageJSONLocked(s.messages[e.messageID], false)
		s.mu.Unlock()
		return reply{body: out}
	}
	m := &Message{ID: s.newIDLocked(), ChannelID: channel, GuildID: c.GuildID, Author: s.botUser(), Content: content,
		Nonce: nonce, AllowedMentions: wb.AllowedMentions, Created: time.Now(), Files: files}
	if nonce != "" {
		s.nonces[nk] = nonceEntry{messageID: m.ID, at: m.Created}
	}
	for _, f := range files {
		m.Attachments = append(m.Attachments, s.addAttachmentLocked(CDNFile{ChannelID: channel, Name: f.Name, ContentType: f.ContentType, Data: f.Data}))
	}
	if wb.MessageReference != nil {
		var ref struct {
			MessageID       string `json:"message_id"`
			FailIfNotExists *bool  `json:"fail_if_not_exists"`
		}
		_ = json.Unmarshal(*wb.MessageReference, &ref)
		if _, exists := s.messages[ref.MessageID]; exists {
			m.ReferenceID = ref.MessageID
		} else if ref.FailIfNotExists == nil || *ref.FailIfNotExists {
			s.mu.Unlock()
			return jsonErr(http.StatusBadRequest, 50035, "Invalid Form Body: Unknown message")
		}
	}
	s.messages[m.ID] = m
	s.order[channel] = append(s.order[channel], m.ID)
	out := s.messageJSONLocked(m, false)
	var echo map[string]any
	if !s.opts.NoEcho {
		echo = s.messageJSONLocked(m, true)
	}
	s.mu.Unlock()
	rep := reply{body: out}
	if echo != nil {
		rep.after = func() { s.Dispatch("MESSAGE_CREATE", echo) }
	}
	return rep
}

func (s *Server) editMessage(channel, id string, body []byte) reply {
	var wb writeBody
	if err := json.Unmarshal(body, &wb); err != nil {
		return jsonErr(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok || m.Deleted || m.ChannelID != channel {
		return jsonErr(http.StatusNotFound, 10008, "Unknown Message")
	}
	if m.Author.ID != s.opts.BotID {
		return jsonErr(http.StatusForbidden, 50005, "Cannot edit a message authored by another user")
	}
	if wb.Content != nil {
		if rep, ok := checkContent(*wb.Content); !ok {
			return rep
		}
		m.Content = *wb.Content
	}
	m.AllowedMentions = wb.AllowedMentions
	m.Edits++
	m.Edited = time.Now()
	return reply{body: s.messageJSONLocked(m, false)}
}

func (s *Server) deleteMessage(channel, id string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok || m.Deleted || m.ChannelID != channel {
		return jsonErr(http.StatusNotFound, 10008, "Unknown Message")
	}
	m.Deleted = true
	return reply{status: http.StatusNoContent}
}

func (s *Server) startThread(channel, msgID string, body []byte) reply {
	var req struct {
		Name                string `json:"name"`
		AutoArchiveDuration int    `json:"auto_archive_duration"`
	}
	_ = json.Unmarshal(body, &req)
	s.mu.Lock()
	c, ok := s.channels[channel]
	if !ok {
		s.mu.Unlock()
		return jsonErr(http.StatusNotFound, 10003, "Unknown Channel")
	}
	if c.Type != ChannelText && c.Type != ChannelAnnouncement {
		s.mu.Unlock()
		return jsonErr(http.StatusBadRequest, 50024, "Cannot execute action on this channel type")
	}
	if c.NoThreads {
		s.mu.Unlock()
		return jsonErr(http.StatusForbidden, 50013, "Missing Permissions")
	}
	if m, ok := s.messages[msgID]; !ok || m.ChannelID != channel {
		s.mu.Unlock()
		return jsonErr(http.StatusNotFound, 10008, "Unknown Message")
	}
	if _, exists := s.channels[msgID]; exists {
		s.mu.Unlock()
		return jsonErr(http.StatusBadRequest, 160004, "A thread has already been created for this message")
	}
	if strings.TrimSpace(req.Name) == "" || len([]rune(req.Name)) > 100 {
		s.mu.Unlock()
		return jsonErr(http.StatusBadRequest, 50035, "Invalid Form Body: name")
	}
	th := &Channel{ID: msgID, GuildID: c.GuildID, Name: req.Name, Type: ChannelPublicThread, ParentID: channel}
	s.channels[th.ID] = th
	js := channelJSON(th)
	s.mu.Unlock()
	return reply{status: http.StatusCreated, body: js, after: func() { s.Dispatch("THREAD_CREATE", js) }}
}

func (s *Server) putCommands(app, guild string, body []byte) reply {
	if app != s.opts.AppID {
		return jsonErr(http.StatusForbidden, 50001, "Missing Access")
	}
	var cmds []map[string]any
	if err := json.Unmarshal(body, &cmds); err != nil {
		return jsonErr(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if guild != "" && s.guildNames[guild] == "" {
		return jsonErr(http.StatusForbidden, 50001, "Missing Access")
	}
	for _, c := range cmds {
		c["id"] = s.newIDLocked()
		c["application_id"] = app
		if guild != "" {
			c["guild_id"] = guild
		}
		c["version"] = "1"
	}
	s.commands[guild] = append(json.RawMessage(nil), body...)
	return reply{body: cmds}
}

func (s *Server) interactionByToken(app, token string) (*Interaction, bool) {
	if app != s.opts.AppID {
		return nil, false
	}
	id, ok := s.byToken[token]
	if !ok {
		return nil, false
	}
	return s.interactions[id], true
}

func (s *Server) callback(id, token string, body []byte) reply {
	var cb struct {
		Type int `json:"type"`
		Data struct {
			Content         string          `json:"content"`
			Flags           int             `json:"flags"`
			AllowedMentions json.RawMessage `json:"allowed_mentions"`
			Choices         []Choice        `json:"choices"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &cb); err != nil {
		return jsonErr(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[id]
	if !ok || in.Token != token || time.Since(in.Sent) > s.opts.InteractionTimeout {
		return jsonErr(http.StatusNotFound, 10062, "Unknown interaction")
	}
	if len(in.Callbacks) > 0 {
		return jsonErr(http.StatusBadRequest, 40060, "Interaction has already been acknowledged.")
	}
	switch cb.Type {
	case 4:
		if rep, ok := checkContent(cb.Data.Content); !ok {
			return rep
		}
	case 5:
	case 8:
		if len(cb.Data.Choices) > 25 {
			return jsonErr(http.StatusBadRequest, 50035, "Invalid Form Body: too many choices")
		}
		for _, c := range cb.Data.Choices {
			if n := len([]rune(c.Name)); n == 0 || n > 100 {
				return jsonErr(http.StatusBadRequest, 50035, "Invalid Form Body: choice name length")
			}
		}
		if cb.Data.Choices == nil && !strings.Contains(string(body), `"choices"`) {
			return jsonErr(http.StatusBadRequest, 50035, "Invalid Form Body: choices required")
		}
	default:
		return jsonErr(http.StatusBadRequest, 50035, "Invalid Form Body: unsupported callback type")
	}
	in.Callbacks = append(in.Callbacks, append(json.RawMessage(nil), body...))
	in.ResponseType = cb.Type
	in.Content = cb.Data.Content
	in.Flags = cb.Data.Flags
	in.AllowedMentions = cb.Data.AllowedMentions
	in.Choices = cb.Data.Choices
	return reply{status: http.StatusNoContent}
}

func (s *Server) editOriginal(app, token string, body []byte) reply {
	var wb writeBody
	if err := json.Unmarshal(body, &wb); err != nil {
		return jsonErr(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactionByToken(app, token)
	if !ok || len(in.Callbacks) == 0 || in.Deleted {
		return jsonErr(http.StatusNotFound, 10008, "Unknown Message")
	}
	if wb.Content != nil {
		if rep, ok := checkContent(*wb.Content); !ok {
			return rep
		}
		in.Content = *wb.Content
	}
	in.AllowedMentions = wb.AllowedMentions
	return reply{body: map[string]any{"id": in.ID, "channel_id": in.ChannelID, "content": in.Content, "author": userJSON(s.botUser()), "timestamp": time.Now().Format(time.RFC3339Nano), "type": 20, "flags": in.Flags}}
}

func (s *Server) deleteOriginal(app, token string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactionByToken(app, token)
	if !ok || len(in.Callbacks) == 0 || in.Deleted {
		return jsonErr(http.StatusNotFound, 10008, "Unknown Message")
	}
	in.Deleted = true
	return reply{status: http.StatusNoContent}
}

func (s *Server) followup(app, token string, body []byte) reply {
	var wb writeBody
	if err := json.Unmarshal(body, &wb); err != nil {
		return jsonErr(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
	}
	content := ""
	if wb.Content != nil {
		content = *wb.Content
	}
	if rep, ok := checkContent(content); !ok {
		return rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactionByToken(app, token)
	if !ok || len(in.Callbacks) == 0 {
		return jsonErr(http.StatusNotFound, 10015, "Unknown Webhook")
	}
	f := Followup{ID: s.newIDLocked(), Content: content, Flags: wb.Flags, AllowedMentions: wb.AllowedMentions}
	in.Followups = append(in.Followups, f)
	return reply{body: map[string]any{"id": f.ID, "channel_id": in.ChannelID, "content": content, "author": userJSON(s.botUser()), "timestamp": time.Now().Format(time.RFC3339Nano), "type": 0, "flags": f.Flags}}
}

// JSON shapes (the fields discordgo reads).

// roleJSON renders a role as in GUILD_CREATE; a bot's managed role has
// tags.bot_id.
func roleJSON(r Role) map[string]any {
	out := map[string]any{"id": r.ID, "name": r.Name, "managed": r.Managed, "permissions": "0", "position": 1,
		"color": 0, "hoist": false, "mentionable": false, "flags": 0, "icon": nil, "unicode_emoji": nil}
	if r.BotID != "" {
		out["tags"] = map[string]any{"bot_id": r.BotID}
	}
	return out
}

func userJSON(u User) map[string]any {
	out := map[string]any{"id": u.ID, "username": u.Username, "discriminator": "0", "bot": u.Bot}
	if u.GlobalName != "" {
		out["global_name"] = u.GlobalName
	}
	return out
}

func channelJSON(c *Channel) map[string]any {
	out := map[string]any{"id": c.ID, "type": c.Type, "name": c.Name}
	if c.GuildID != "" {
		out["guild_id"] = c.GuildID
	}
	if c.ParentID != "" {
		out["parent_id"] = c.ParentID
	}
	if c.Type == ChannelPublicThread {
		out["thread_metadata"] = map[string]any{"archived": false, "auto_archive_duration": 1440, "locked": false}
	}
	return out
}

var (
	userMentionRE = regexp.MustCompile(`<@!?(\d+)>`)
	roleMentionRE = regexp.MustCompile(`<@&(\d+)>`)
)

// messageJSONLocked renders a message as Discord sends it; full adds the
// referenced message (as in MESSAGE_CREATE dispatches). Callers hold s.mu.
func (s *Server) messageJSONLocked(m *Message, full bool) map[string]any {
	typ := 0
	if m.ReferenceID != "" && m.Forward == nil {
		typ = 19
	}
	mentions := []any{}
	seen := map[string]bool{}
	addMention := func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		u, ok := s.users[id]
		if !ok {
			u = User{ID: id, Username: "user" + id}
		}
		mentions = append(mentions, userJSON(u))
	}
	for _, id := range m.Mentions {
		addMention(id)
	}
	roles := append([]string{}, m.MentionRoles...)
	out := map[string]any{
		"id": m.ID, "channel_id": m.ChannelID, "content": m.Content, "author": userJSON(m.Author),
		"timestamp": m.Created.UTC().Format(time.RFC3339Nano), "type": typ, "tts": false,
		"mention_everyone": false, "mention_roles": roles, "attachments": attachmentsJSON(m.Attachments), "embeds": []any{},
		"pinned": false, "flags": 0,
	}
	if !m.Edited.IsZero() {
		out["edited_timestamp"] = m.Edited.UTC().Format(time.RFC3339Nano)
	}
	if m.Nonce != "" {
		out["nonce"] = m.Nonce
	}
	if m.GuildID != "" {
		out["guild_id"] = m.GuildID
		if !m.Author.Bot {
			out["member"] = map[string]any{"roles": []string{}, "joined_at": "2024-01-01T00:00:00Z", "deaf": false, "mute": false}
		}
	}
	if f := m.Forward; f != nil {
		// A forward: type 0, a FORWARD reference to the original and its
		// snapshot; Discord sends no referenced_message for it.
		ref := map[string]any{"type": 1, "message_id": f.MessageID, "channel_id": f.ChannelID}
		if f.GuildID != "" {
			ref["guild_id"] = f.GuildID
		}
		out["message_reference"] = ref
		out["message_snapshots"] = []any{snapshotJSON(*f)}
	} else if m.ReferenceID != "" {
		ref := map[string]any{"message_id": m.ReferenceID, "channel_id": m.ChannelID}
		if m.GuildID != "" {
			ref["guild_id"] = m.GuildID
		}
		out["message_reference"] = ref
		if full {
			if rm, ok := s.messages[m.ReferenceID]; ok && !rm.Deleted {
				out["referenced_message"] = s.messageJSONLocked(rm, false)
			}
		}
	}
	out["mentions"] = mentions
	return out
}
