package discordtest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// gateway is the fake's single-shard gateway state.
type gateway struct {
	mu          sync.Mutex // guards the fields below
	sessionID   string
	seq         int64
	log         []frame // dispatches of the current session (for RESUME)
	conn        *gwConn // the identified/resumed connection, if any
	conns       map[*gwConn]bool
	identifies  int
	resumes     int
	forceReplay int
	noAcks      bool
	intents     int
	heartbeats  int
	nextSession int

	send sync.Mutex // serializes dispatch writes so sequence numbers go out in order
}

type frame struct {
	seq  int64
	data []byte
}

type gwConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

const maxLog = 4096

func (g *gateway) init() { g.conns = make(map[*gwConn]bool) }

func (c *gwConn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

func (c *gwConn) closeWith(code int, text string) {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
}

func (g *gateway) closeAll() {
	g.mu.Lock()
	conns := make([]*gwConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.conn = nil
	g.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.Close()
	}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

type inbound struct {
	Op   int             `json:"op"`
	Data json.RawMessage `json:"d"`
}

func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &gwConn{ws: ws}
	g := &s.gw
	g.mu.Lock()
	g.conns[c] = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		if g.conn == c {
			g.conn = nil
		}
		g.mu.Unlock()
		_ = ws.Close()
		s.changedNow()
	}()
	hello, _ := json.Marshal(map[string]any{"op": 10, "d": map[string]any{"heartbeat_interval": s.opts.HeartbeatInterval.Milliseconds()}})
	if c.write(hello) != nil {
		return
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var in inbound
		if json.Unmarshal(data, &in) != nil {
			c.closeWith(4002, "Error while decoding payload.")
			return
		}
		switch in.Op {
		case 1: // heartbeat
			g.mu.Lock()
			g.heartbeats++
			ack := !g.noAcks
			g.mu.Unlock()
			if ack {
				_ = c.write([]byte(`{"op":11}`))
			}
		case 2:
			if !s.identify(c, in.Data) {
				return
			}
		case 6:
			if !s.resume(c, in.Data) {
				return
			}
		case 3, 4, 8: // presence, voice, request members: accepted and ignored
		default:
			c.closeWith(4001, "Unknown opcode.")
			return
		}
	}
}

func (s *Server) changedNow() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) identify(c *gwConn, raw json.RawMessage) bool {
	var d struct {
		Token   string `json:"token"`
		Intents int    `json:"intents"`
	}
	_ = json.Unmarshal(raw, &d)
	if d.Token != "Bot "+s.opts.Token {
		c.closeWith(4004, "Authentication failed.")
		return false
	}
	if s.opts.RejectMessageContent && d.Intents&(1<<15) != 0 {
		c.closeWith(4014, "Disallowed intent(s).")
		return false
	}
	g := &s.gw
	g.send.Lock()
	defer g.send.Unlock()
	g.mu.Lock()
	g.nextSession++
	g.sessionID = "fake-session-" + strconv.Itoa(g.nextSession)
	g.seq = 0
	g.log = nil
	g.conn = c
	g.identifies++
	g.intents = d.Intents
	g.mu.Unlock()

	guilds := make([]any, 0, len(s.guilds))
	for _, id := range s.guilds {
		guilds = append(guilds, map[string]any{"id": id, "unavailable": true})
	}
	ready := map[string]any{
		"v": 9, "session_id": g.sessionID, "resume_gateway_url": "ws" + s.URL[len("http"):] + "/gateway",
		"user":        userJSON(s.botUser()),
		"application": map[string]any{"id": s.opts.AppID, "flags": 0},
		"guilds":      guilds, "private_channels": []any{},
	}
	s.dispatchLocked("READY", ready)
	for _, id := range s.guilds {
		s.dispatchLocked("GUILD_CREATE", s.guildJSON(id))
	}
	s.changedNow()
	return true
}

func (s *Server) guildJSON(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	channels, threads := []any{}, []any{}
	for _, c := range s.channels {
		if c.GuildID != id {
			continue
		}
		if c.Type == ChannelPublicThread {
			threads = append(threads, channelJSON(c))
		} else {
			channels = append(channels, channelJSON(c))
		}
	}
	roles := []any{}
	for _, r := range s.roles[id] {
		roles = append(roles, roleJSON(r))
	}
	return map[string]any{
		"id": id, "name": s.guildNames[id], "unavailable": false, "member_count": 3,
		"channels": channels, "threads": threads, "roles": roles, "members": []any{},
	}
}

func (s *Server) resume(c *gwConn, raw json.RawMessage) bool {
	var d struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	_ = json.Unmarshal(raw, &d)
	if d.Token != "Bot "+s.opts.Token {
		c.closeWith(4004, "Authentication failed.")
		return false
	}
	g := &s.gw
	g.send.Lock()
	defer g.send.Unlock()
	g.mu.Lock()
	if d.SessionID != g.sessionID || d.SessionID == "" {
		g.mu.Unlock()
		_ = c.write([]byte(`{"op":9,"d":false}`))
		return true
	}
	var replay [][]byte
	forced := g.forceReplay
	g.forceReplay = 0
	for _, f := range g.log {
		if f.seq > d.Seq || (forced > 0 && f.seq > d.Seq-int64(forced)) {
			replay = append(replay, f.data)
		}
	}
	g.conn = c
	g.resumes++
	g.mu.Unlock()
	// Discord replays the missed events, then sends RESUMED.
	for _, data := range replay {
		if c.write(data) != nil {
			return false
		}
	}
	s.dispatchLocked("RESUMED", map[string]any{})
	s.changedNow()
	return true
}

// Dispatch sends an event (op 0) with the next sequence number. While no
// connection is up the event is only logged, and a RESUME replays it.
func (s *Server) Dispatch(event string, data any) int64 {
	g := &s.gw
	g.send.Lock()
	defer g.send.Unlock()
	return s.dispatchLocked(event, data)
}

// dispatchLocked is Dispatch with g.send held.
func (s *Server) dispatchLocked(event string, data any) int64 {
	g := &s.gw
	g.mu.Lock()
	g.seq++
	seq := g.seq
	b, _ := json.Marshal(map[string]any{"op": 0, "s": seq, "t": event, "d": data})
	g.log = append(g.log, frame{seq: seq, data: b})
	if len(g.log) > maxLog {
		g.log = g.log[len(g.log)-maxLog:]
	}
	c := g.conn
	g.mu.Unlock()
	if c != nil {
		_ = c.write(b)
	}
	return seq
}

// Connected reports whether a session is identified or resumed on an open connection.
func (s *Server) Connected() bool {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.conn != nil
}

// WaitConnected waits until a session is up.
func (s *Server) WaitConnected(ctx context.Context) error {
	return s.WaitUntil(ctx, s.Connected)
}

// Identifies returns how many IDENTIFYs the fake accepted.
func (s *Server) Identifies() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.identifies
}

// Resumes returns how many RESUMEs the fake accepted.
func (s *Server) Resumes() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.resumes
}

// Heartbeats returns how many heartbeats the client sent.
func (s *Server) Heartbeats() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.heartbeats
}

// Intents returns the intents of the last accepted IDENTIFY.
func (s *Server) Intents() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.intents
}

// SetHeartbeatAcks turns heartbeat ACKs on (default) or off; without ACKs
// the client gives up on the connection after a few intervals and resumes.
func (s *Server) SetHeartbeatAcks(on bool) {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	s.gw.noAcks = !on
}

// DropConnection closes the gateway connection abruptly. On the client's
// RESUME the fake replays what it missed plus the last replay events it had
// already received (as Discord may do), so duplicates can be tested.
func (s *Server) DropConnection(replay int) {
	g := &s.gw
	g.mu.Lock()
	c := g.conn
	g.conn = nil
	g.forceReplay = replay
	g.mu.Unlock()
	if c != nil {
		_ = c.ws.Close()
	}
	s.changedNow()
}

// RequestReconnect sends op 7 (Reconnect): the client closes and resumes.
func (s *Server) RequestReconnect() {
	g := &s.gw
	g.mu.Lock()
	c := g.conn
	g.mu.Unlock()
	if c != nil {
		_ = c.write([]byte(`{"op":7,"d":null}`))
	}
}

// Post describes a message a user writes.
type Post struct {
	// ChannelID is where the message is written (a guild channel, thread or DM channel).
	ChannelID string
	// Author defaults to Alice.
	Author User
	// Content may contain mentions such as <@botID>, <@&role>, <#channel>.
	Content string
	// ReplyTo is the id of a message this one replies to.
	ReplyTo string
	// NoReplyPing turns off the ping of a reply (by default the replied
	// author is added to mentions, as in Discord's client).
	NoReplyPing bool
	// Attachments are files on the fake's CDN (see AddAttachment).
	Attachments []Attachment
	// Forward makes the message a forward of the snapshot (Content is then
	// the user's optional comment, usually empty). ReplyTo is ignored.
	Forward *Snapshot
	// Extra holds more top-level fields of the MESSAGE_CREATE payload, as
	// Discord sends them (e.g. "components"); they replace generated ones.
	Extra map[string]any
}

// UserMessage stores a user's message and dispatches MESSAGE_CREATE for it.
// It returns the stored message (its ID is the snowflake Discord would assign).
func (s *Server) UserMessage(p Post) Message {
	m, js := s.storeMessage(p)
	s.Dispatch("MESSAGE_CREATE", js)
	return m
}

// AddMessage stores a user's message without dispatching it: history the
// bot never saw (written before it joined, say), readable over REST.
func (s *Server) AddMessage(p Post) Message {
	m, _ := s.storeMessage(p)
	return m
}

// storeMessage stores a user's message and returns it with its
// MESSAGE_CREATE payload.
func (s *Server) storeMessage(p Post) (Message, map[string]any) {
	if p.Author.ID == "" {
		p.Author = User{ID: AliceID, Username: "alice", GlobalName: "Alice"}
	}
	s.mu.Lock()
	c, ok := s.channels[p.ChannelID]
	guild := ""
	if ok {
		guild = c.GuildID
	}
	if _, known := s.users[p.Author.ID]; !known {
		s.users[p.Author.ID] = p.Author
	}
	m := &Message{ID: s.newIDLocked(), ChannelID: p.ChannelID, GuildID: guild, Author: p.Author, Content: p.Content, Created: time.Now()}
	for _, sm := range userMentionRE.FindAllStringSubmatch(p.Content, -1) {
		m.Mentions = append(m.Mentions, sm[1])
	}
	for _, sm := range roleMentionRE.FindAllStringSubmatch(p.Content, -1) {
		m.MentionRoles = append(m.MentionRoles, sm[1])
	}
	m.Attachments = append([]Attachment(nil), p.Attachments...)
	if f := p.Forward; f != nil {
		sn := *f
		if sn.MessageID == "" {
			sn.MessageID = s.newIDLocked()
		}
		if sn.ChannelID == "" {
			sn.ChannelID = s.newIDLocked()
		}
		m.Forward = &sn
		m.ReferenceID = sn.MessageID
	} else if p.ReplyTo != "" {
		m.ReferenceID = p.ReplyTo
		if rm, ok := s.messages[p.ReplyTo]; ok && !p.NoReplyPing {
			m.Mentions = append(m.Mentions, rm.Author.ID)
		}
	}
	s.messages[m.ID] = m
	s.order[p.ChannelID] = append(s.order[p.ChannelID], m.ID)
	js := s.messageJSONLocked(m, true)
	for k, v := range p.Extra {
		js[k] = v
	}
	out := *m
	s.notifyLocked()
	s.mu.Unlock()
	return out, js
}

// Option is one slash-command option in an interaction.
type Option struct {
	Name    string
	Type    int // 1 subcommand, 3 string, 5 boolean, ...
	Value   any
	Focused bool
	Options []Option
}

// Invoke describes a slash command (or autocomplete request) a user makes.
type Invoke struct {
	ChannelID string
	// User defaults to Alice.
	User User
	// Name is the command name as registered.
	Name    string
	Options []Option
	// Autocomplete sends type 4 (autocomplete) instead of type 2 (command).
	Autocomplete bool
}

func optionsJSON(opts []Option) []any {
	out := []any{}
	for _, o := range opts {
		m := map[string]any{"name": o.Name, "type": o.Type}
		if o.Value != nil {
			m["value"] = o.Value
		}
		if o.Focused {
			m["focused"] = true
		}
		if len(o.Options) > 0 {
			m["options"] = optionsJSON(o.Options)
		}
		out = append(out, m)
	}
	return out
}

// Interact dispatches INTERACTION_CREATE and returns the interaction's id.
func (s *Server) Interact(in Invoke) string {
	if in.User.ID == "" {
		in.User = User{ID: AliceID, Username: "alice", GlobalName: "Alice"}
	}
	typ := 2
	if in.Autocomplete {
		typ = 4
	}
	s.mu.Lock()
	id := s.newIDLocked()
	token := "itoken-" + id
	guild := ""
	chType := ChannelText
	if c, ok := s.channels[in.ChannelID]; ok {
		guild = c.GuildID
		chType = c.Type
	}
	rec := &Interaction{ID: id, Token: token, ChannelID: in.ChannelID, GuildID: guild, Type: typ, Sent: time.Now()}
	s.interactions[id] = rec
	s.byToken[token] = id
	s.notifyLocked()
	s.mu.Unlock()
	d := map[string]any{
		"id": id, "application_id": s.opts.AppID, "type": typ, "token": token, "version": 1,
		"channel_id": in.ChannelID, "app_permissions": "0", "locale": "en-US",
		"channel": map[string]any{"id": in.ChannelID, "type": chType},
		"data":    map[string]any{"id": "cmd-" + in.Name, "name": in.Name, "type": 1, "options": optionsJSON(in.Options)},
	}
	if guild != "" {
		d["guild_id"] = guild
		d["member"] = map[string]any{"user": userJSON(in.User), "roles": []string{}, "permissions": "0", "joined_at": "2024-01-01T00:00:00Z"}
	} else {
		d["user"] = userJSON(in.User)
	}
	s.Dispatch("INTERACTION_CREATE", d)
	return id
}
