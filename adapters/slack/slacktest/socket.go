package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Envelope is one Socket Mode envelope sent (or queued) by the fake.
type Envelope struct {
	ID              string
	Type            string
	Payload         json.RawMessage
	AcceptsResponse bool
	// Attempt is the retry_attempt of the latest delivery (0 = first).
	Attempt int
	// Deliveries counts how often the envelope was written to a socket.
	Deliveries int
	Acked      bool
	// AckPayload is the payload of the ack, if any.
	AckPayload json.RawMessage
	SentAt     time.Time
	AckedAt    time.Time
}

type wsConn struct {
	seq     int
	c       *websocket.Conn
	writeMu sync.Mutex
	done    chan struct{}
	once    sync.Once
}

func (c *wsConn) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.c.WriteMessage(websocket.TextMessage, b)
}

func (c *wsConn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.c.Close()
	})
}

// socketState is guarded by Server.mu.
type socketState struct {
	tickets   map[string]bool
	ticketSeq int
	conns     map[*wsConn]bool
	connSeq   int
	hellos    int
	envs      map[string]*Envelope
	order     []string
	envSeq    int
	eventSeq  int
}

func (st *socketState) init() {
	st.tickets = map[string]bool{}
	st.conns = map[*wsConn]bool{}
	st.envs = map[string]*Envelope{}
}

func (s *Server) appsConnectionsOpen(apiRequest) (map[string]any, string) {
	s.sock.ticketSeq++
	ticket := fmt.Sprintf("t%d", s.sock.ticketSeq)
	s.sock.tickets[ticket] = true
	wsURL := "ws" + strings.TrimPrefix(s.base, "http") + "/link/?ticket=" + ticket
	return map[string]any{"url": wsURL}, ""
}

var upgrader = websocket.Upgrader{
	// slack-go sends Origin: https://api.slack.com; accept any origin.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *Server) handleSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	ok := s.sock.tickets[ticket]
	delete(s.sock.tickets, ticket)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown ticket", http.StatusUnauthorized)
		return
	}
	select {
	case <-s.closed:
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	default:
	}
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("slacktest: upgrade", "err", err)
		return
	}
	conn := &wsConn{c: c, done: make(chan struct{})}
	hello := map[string]any{
		"type":            "hello",
		"num_connections": 1,
		"connection_info": map[string]any{"app_id": s.opts.AppID},
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 3600},
	}
	if err := conn.write(hello); err != nil {
		conn.close()
		return
	}
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		conn.close()
		return
	default:
	}
	s.sock.connSeq++
	conn.seq = s.sock.connSeq
	s.sock.conns[conn] = true
	s.sock.hellos++
	// Everything not acked yet (queued while offline, or lost with a dropped
	// connection) is delivered on the new connection.
	var redeliver []*Envelope
	for _, id := range s.sock.order {
		if e := s.sock.envs[id]; !e.Acked {
			redeliver = append(redeliver, e)
		}
	}
	s.notifyLocked()
	s.mu.Unlock()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.pingLoop(conn)
	}()
	for _, e := range redeliver {
		s.deliver(conn, e)
	}
	s.readLoop(conn)
}

func (s *Server) pingLoop(conn *wsConn) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-conn.done:
			return
		case <-s.closed:
			return
		case <-t.C:
			if err := conn.c.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second)); err != nil {
				conn.close()
				return
			}
		}
	}
}

func (s *Server) readLoop(conn *wsConn) {
	defer func() {
		conn.close()
		s.mu.Lock()
		delete(s.sock.conns, conn)
		s.notifyLocked()
		s.mu.Unlock()
	}()
	for {
		_, data, err := conn.c.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &ack); err != nil || ack.EnvelopeID == "" {
			s.log.Debug("slacktest: unexpected frame", "data", string(data))
			continue
		}
		s.mu.Lock()
		if e, ok := s.sock.envs[ack.EnvelopeID]; ok && !e.Acked {
			e.Acked = true
			e.AckedAt = time.Now()
			if len(ack.Payload) > 0 && string(ack.Payload) != "null" {
				e.AckPayload = ack.Payload
			}
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// deliver writes an envelope to a connection.
func (s *Server) deliver(conn *wsConn, e *Envelope) {
	s.mu.Lock()
	if e.Deliveries > 0 {
		e.Attempt++
		e.Acked, e.AckPayload, e.AckedAt = false, nil, time.Time{}
	}
	e.Deliveries++
	e.SentAt = time.Now()
	frame := map[string]any{
		"envelope_id":              e.ID,
		"type":                     e.Type,
		"accepts_response_payload": e.AcceptsResponse,
		"retry_attempt":            e.Attempt,
		"payload":                  e.Payload,
	}
	if e.Attempt > 0 {
		frame["retry_reason"] = "timeout"
	}
	s.notifyLocked()
	s.mu.Unlock()
	if err := conn.write(frame); err != nil {
		conn.close()
	}
}

// liveConn returns the newest open connection (an older one may be
// closing after a disconnect), or nil.
func (s *Server) liveConn() *wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *wsConn
	for c := range s.sock.conns {
		if best == nil || c.seq > best.seq {
			best = c
		}
	}
	return best
}

// redeliverLoop re-sends envelopes that were not acked in time, as Slack
// does (retry_attempt > 0, retry_reason "timeout").
func (s *Server) redeliverLoop() {
	if s.opts.RedeliverAfter < 0 {
		return
	}
	t := time.NewTicker(s.opts.RedeliverAfter / 4)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		c := s.liveConn()
		if c == nil {
			continue
		}
		var due []*Envelope
		s.mu.Lock()
		for _, id := range s.sock.order {
			e := s.sock.envs[id]
			if !e.Acked && e.Deliveries > 0 && e.Deliveries < 4 && time.Since(e.SentAt) > s.opts.RedeliverAfter {
				due = append(due, e)
			}
		}
		s.mu.Unlock()
		for _, e := range due {
			s.deliver(c, e)
		}
	}
}

// SendEnvelope sends an envelope of the given type ("events_api",
// "slash_commands", "interactive") over Socket Mode, or queues it until a
// client connects. It returns the envelope id.
func (s *Server) SendEnvelope(typ string, payload any, acceptsResponse bool) string {
	raw, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("slacktest: marshal payload: %v", err))
	}
	s.mu.Lock()
	s.sock.envSeq++
	e := &Envelope{ID: fmt.Sprintf("env-%d", s.sock.envSeq), Type: typ, Payload: raw, AcceptsResponse: acceptsResponse}
	s.sock.envs[e.ID] = e
	s.sock.order = append(s.sock.order, e.ID)
	s.mu.Unlock()
	if c := s.liveConn(); c != nil {
		s.deliver(c, e)
	}
	return e.ID
}

// Redeliver sends an envelope again with retry_attempt increased, as Slack
// does when it believes an ack was lost.
func (s *Server) Redeliver(envelopeID string) {
	s.mu.Lock()
	e, ok := s.sock.envs[envelopeID]
	s.mu.Unlock()
	if !ok {
		return
	}
	if c := s.liveConn(); c != nil {
		s.deliver(c, e)
	}
}

// Envelope returns a copy of an envelope's state.
func (s *Server) Envelope(id string) (Envelope, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.sock.envs[id]
	if !ok {
		return Envelope{}, false
	}
	return *e, true
}

// WaitAck waits until the envelope is acked and returns the ack payload.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (json.RawMessage, error) {
	var payload json.RawMessage
	err := s.Wait(ctx, func() bool {
		e, ok := s.Envelope(envelopeID)
		payload = e.AckPayload
		return ok && e.Acked
	})
	return payload, err
}

// WaitConnected waits until at least n Socket Mode connections have received
// hello since the fake started and one is currently open.
func (s *Server) WaitConnected(ctx context.Context, n int) error {
	return s.Wait(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sock.hellos >= n && len(s.sock.conns) > 0
	})
}

// Connections returns how many Socket Mode connections got hello so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sock.hellos
}

// OpenConnections returns the number of currently open Socket Mode connections.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sock.conns)
}

// Disconnect sends {"type":"disconnect","reason":reason} on every open
// connection; slack-go then reconnects.
func (s *Server) Disconnect(reason string) {
	for _, c := range s.openConns() {
		_ = c.write(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "slacktest"}})
	}
}

// DropConnections closes every open Socket Mode connection abruptly, as a
// network failure would.
func (s *Server) DropConnections() {
	for _, c := range s.openConns() {
		c.close()
	}
}

func (s *Server) openConns() []*wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*wsConn, 0, len(s.sock.conns))
	for c := range s.sock.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) closeSockets() {
	for _, c := range s.openConns() {
		c.close()
	}
}

// EventCallback wraps an inner event (a struct or map that marshals to the
// Slack event JSON) in an Events API event_callback body, as Slack sends it
// over HTTP and inside Socket Mode events_api envelopes. Message-like events
// from users are also stored in the fake workspace.
func (s *Server) EventCallback(inner any) (body []byte, eventID string) {
	raw, err := json.Marshal(inner)
	if err != nil {
		panic(fmt.Sprintf("slacktest: marshal event: %v", err))
	}
	var ev struct {
		Type     string `json:"type"`
		User     string `json:"user"`
		Text     string `json:"text"`
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
		Channel  string `json:"channel"`
		BotID    string `json:"bot_id"`
		SubType  string `json:"subtype"`
	}
	_ = json.Unmarshal(raw, &ev)
	s.mu.Lock()
	s.sock.eventSeq++
	eventID = fmt.Sprintf("Ev%06d", s.sock.eventSeq)
	userMessage := ev.SubType == "" || ev.SubType == "file_share"
	if (ev.Type == "message" || ev.Type == "app_mention") && userMessage && ev.TS != "" && ev.Channel != "" && ev.User != s.opts.BotUserID {
		if _, ok := s.byKey[ev.Channel+"/"+ev.TS]; !ok {
			s.storeLocked(&Message{Channel: ev.Channel, TS: ev.TS, ThreadTS: ev.ThreadTS, User: ev.User, BotID: ev.BotID, Text: ev.Text})
		}
	}
	s.mu.Unlock()
	body, err = json.Marshal(map[string]any{
		"token":          "verification-token",
		"team_id":        s.opts.TeamID,
		"api_app_id":     s.opts.AppID,
		"event":          json.RawMessage(raw),
		"type":           "event_callback",
		"event_id":       eventID,
		"event_time":     time.Now().Unix(),
		"authorizations": []map[string]any{{"team_id": s.opts.TeamID, "user_id": s.opts.BotUserID, "is_bot": true}},
	})
	if err != nil {
		panic(fmt.Sprintf("slacktest: marshal callback: %v", err))
	}
	return body, eventID
}

// SendEvent delivers an inner event over Socket Mode and returns the
// envelope id and the generated event_id.
func (s *Server) SendEvent(inner any) (envelopeID, eventID string) {
	body, eventID := s.EventCallback(inner)
	return s.SendEnvelope("events_api", json.RawMessage(body), false), eventID
}

// Envelopes returns all envelopes in the order they were created.
func (s *Server) Envelopes() []Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Envelope, 0, len(s.sock.order))
	for _, id := range s.sock.order {
		out = append(out, *s.sock.envs[id])
	}
	return out
}
