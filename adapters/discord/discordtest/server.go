// Package discordtest is a loopback fake of Discord for tests and load
// tools: the REST routes a bot uses (with rate-limit headers, a per-channel
// write budget enforced with 429s, and 404 for everything else) and the
// gateway (HELLO, IDENTIFY/RESUME, READY, heartbeats, dispatches, dropping
// the connection and replaying events on RESUME), and a CDN serving
// attachments (see files.go). Every REST and CDN call is recorded. Drive it
// with the real discordgo client: point it at APIURL.
//
// New builds a server without a testing.TB (for load tools); NewTest also
// registers Close with t.Cleanup.
package discordtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Default identities used when Options leave them empty.
const (
	DefaultToken   = "fake-bot-token"
	DefaultBotID   = "900000000000000001"
	DefaultBotName = "cometbot"
	DefaultAppID   = "900000000000000002"
	DefaultGuildID = "800000000000000001"
	// GeneralChannel is a text channel of the default guild where the bot may open threads.
	GeneralChannel = "810000000000000001"
	// LockedChannel is a text channel of the default guild where the bot may not open threads.
	LockedChannel = "810000000000000002"
	// BotRoleID is the bot's managed role in the default guild (tags.bot_id
	// is the bot), named unlike the bot.
	BotRoleID = "820000000000000002"
	// OtherBotRoleID is another bot's managed role in the default guild,
	// named like this bot.
	OtherBotRoleID = "820000000000000003"
	// AliceID and BobID are the default human users.
	AliceID = "700000000000000001"
	BobID   = "700000000000000002"
)

// Channel types (Discord's numbering).
const (
	ChannelText         = 0
	ChannelDM           = 1
	ChannelVoice        = 2
	ChannelAnnouncement = 5
	ChannelPublicThread = 11
)

// User is a Discord user.
type User struct {
	ID         string
	Username   string
	GlobalName string
	Bot        bool
}

// Channel is a guild channel, thread or DM channel.
type Channel struct {
	ID       string
	GuildID  string
	Name     string
	Type     int
	ParentID string
	// NoThreads makes thread creation on messages of this channel fail with
	// 403 Missing Permissions.
	NoThreads bool
}

// Role is a guild role.
type Role struct {
	ID      string
	Name    string
	Managed bool
	// BotID is set on a bot's managed role (Discord's tags.bot_id).
	BotID string
}

// Guild is a server the bot is in.
type Guild struct {
	ID       string
	Name     string
	Channels []Channel
	Roles    []Role
}

// Options configures a fake Discord.
type Options struct {
	// Token is the bot token the fake accepts (without "Bot "); default DefaultToken.
	Token string
	// BotID, BotName and AppID identify the bot; defaults DefaultBotID, DefaultBotName, DefaultAppID.
	BotID, BotName, AppID string
	// Guilds the bot is in. Nil means one default guild (DefaultGuildID)
	// with GeneralChannel and LockedChannel; NoGuilds means none.
	Guilds   []Guild
	NoGuilds bool
	// Users known to the fake besides the bot (for mentions); default Alice and Bob.
	Users []User
	// WriteBudget and WriteWindow: message posts, edits and deletes allowed
	// per channel in any sliding window; beyond, 429. Defaults 5 per 5 s;
	// a negative WriteBudget disables the limit.
	WriteBudget int
	WriteWindow time.Duration
	// HeartbeatInterval sent in HELLO; default 41.25 s.
	HeartbeatInterval time.Duration
	// RejectMessageContent closes an IDENTIFY that asks for the privileged
	// MESSAGE_CONTENT intent with 4014, like Discord when the intent is off.
	RejectMessageContent bool
	// NoEcho stops the fake from dispatching MESSAGE_CREATE for the bot's own messages.
	NoEcho bool
	// MaxCalls bounds the call recorder and the per-channel write log
	// (oldest dropped) for long load runs; default 100,000.
	MaxCalls int
	// InteractionTimeout is how long an interaction may go unanswered
	// before its callback is refused (Discord: 3 s). Default 3 s.
	InteractionTimeout time.Duration
	// UploadLimit is the bytes of files one message may carry; more is
	// refused with 413 (code 40005). Default DefaultUploadLimit (10 MiB).
	UploadLimit int64
	// NonceWindow is how long a message post with enforce_nonce returns the
	// message already created with the same nonce by the same author in the
	// same channel (Discord: "a few minutes"). Default 5 minutes.
	NonceWindow time.Duration
}

// Message is a message stored by the fake.
type Message struct {
	ID        string
	ChannelID string
	GuildID   string
	Author    User
	Content   string
	// Nonce is the nonce the message was posted with, if any.
	Nonce string
	// ReferenceID is the message this one replies to.
	ReferenceID string
	// Forward is the forwarded message when this message is a forward
	// (message_reference type 1 with message_snapshots).
	Forward *Snapshot
	// Attachments are the message's files as Discord describes them (on the
	// fake's CDN); Files are the files the bot uploaded with it, as sent.
	Attachments []Attachment
	Files       []File
	// Mentions are the user ids the message mentions, MentionRoles the role ids.
	Mentions     []string
	MentionRoles []string
	// AllowedMentions is the allowed_mentions object of the last write (raw JSON; nil if absent).
	AllowedMentions json.RawMessage
	Created         time.Time
	Edited          time.Time
	Edits           int
	Deleted         bool
}

// Call is one recorded REST request.
type Call struct {
	Time   time.Time
	Method string
	// Path is the route below the API base, e.g. /channels/1/messages.
	Path  string
	Query string
	Body  []byte
	// ContentType is the request's Content-Type header.
	ContentType string
	// Payload is the JSON of the request: the body, or the payload_json
	// part of a multipart/form-data body.
	Payload []byte
	// Status is the HTTP status the fake answered.
	Status int
	// Fault is the transport fault injected after the request took effect
	// (see FailAfterStore), or "".
	Fault Fault
	// Authorized is true when the request carried the right bot token.
	Authorized bool
}

// Interaction is the fake's view of one interaction and the bot's answers.
type Interaction struct {
	ID, Token, ChannelID, GuildID string
	Type                          int
	Sent                          time.Time
	// Callbacks are the bodies posted to the callback endpoint.
	Callbacks []json.RawMessage
	// ResponseType is the type of the first callback (4 message, 5 deferred, 8 autocomplete).
	ResponseType int
	// Content and Flags of the original response (after edits).
	Content string
	Flags   int
	// AllowedMentions of the last write to the original response.
	AllowedMentions json.RawMessage
	// Choices of an autocomplete answer.
	Choices []Choice
	// Followups posted through the webhook.
	Followups []Followup
	// Deleted is true when the original response was deleted.
	Deleted bool
}

// Choice is one autocomplete choice.
type Choice struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Followup is a follow-up message of an interaction.
type Followup struct {
	ID              string
	Content         string
	Flags           int
	AllowedMentions json.RawMessage
}

type fault struct {
	method, path string
	status       int
	body         string
	retryAfter   time.Duration
	after        Fault // fail the transport after the request took effect
	skip         int   // matching requests to let through first (after faults)
}

// Fault is a transport failure the fake injects after a request took
// effect: the client cannot tell whether its request succeeded.
type Fault string

// Faults FailAfterStore can inject.
const (
	// FaultBadResponse answers 200 with a body that is not valid JSON.
	FaultBadResponse Fault = "bad_response"
	// FaultDrop closes the connection (with a reset) instead of answering.
	FaultDrop Fault = "drop"
)

// nonceKey identifies a nonce: Discord de-duplicates per author and channel.
type nonceKey struct{ channel, author, nonce string }

type nonceEntry struct {
	messageID string
	at        time.Time
}

// Server is a running fake Discord.
type Server struct {
	opts Options
	hs   *httptest.Server
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string

	mu           sync.Mutex
	nextID       int64
	users        map[string]User
	guilds       []string
	guildNames   map[string]string
	roles        map[string][]Role
	channels     map[string]*Channel
	messages     map[string]*Message
	order        map[string][]string // channel -> message ids
	calls        []Call
	recent       map[string][]time.Time // channel -> accepted writes inside the window
	writeLog     map[string][]time.Time // channel -> every accepted write
	limited      int
	faults       []fault
	commands     map[string]json.RawMessage
	interactions map[string]*Interaction
	byToken      map[string]string
	cdn          map[string]*cdnEntry // escaped path -> file
	cdnCalls     []CDNRequest
	nonces       map[nonceKey]nonceEntry
	changed      chan struct{}

	gw gateway
}

// New starts a fake Discord on 127.0.0.1.
func New(opts Options) (*Server, error) {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	opts.Token = strings.TrimPrefix(opts.Token, "Bot ")
	if opts.BotID == "" {
		opts.BotID = DefaultBotID
	}
	if opts.BotName == "" {
		opts.BotName = DefaultBotName
	}
	if opts.AppID == "" {
		opts.AppID = DefaultAppID
	}
	if opts.WriteBudget == 0 {
		opts.WriteBudget = 5
	}
	if opts.WriteWindow <= 0 {
		opts.WriteWindow = 5 * time.Second
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 41250 * time.Millisecond
	}
	if opts.MaxCalls <= 0 {
		opts.MaxCalls = 100000
	}
	if opts.InteractionTimeout <= 0 {
		opts.InteractionTimeout = 3 * time.Second
	}
	if opts.UploadLimit <= 0 {
		opts.UploadLimit = DefaultUploadLimit
	}
	if opts.NonceWindow <= 0 {
		opts.NonceWindow = 5 * time.Minute
	}
	if opts.Guilds == nil && !opts.NoGuilds {
		opts.Guilds = []Guild{{
			ID: DefaultGuildID, Name: "Test Server",
			Channels: []Channel{
				{ID: GeneralChannel, Name: "general", Type: ChannelText},
				{ID: LockedChannel, Name: "locked", Type: ChannelText, NoThreads: true},
			},
			Roles: []Role{
				{ID: "820000000000000001", Name: "admins"},
				{ID: BotRoleID, Name: "Comet Helper", Managed: true, BotID: opts.BotID},
				{ID: OtherBotRoleID, Name: opts.BotName, Managed: true, BotID: "900000000000000099"},
			},
		}}
	}
	if opts.Users == nil {
		opts.Users = []User{
			{ID: AliceID, Username: "alice", GlobalName: "Alice"},
			{ID: BobID, Username: "bob", GlobalName: "Bob"},
		}
	}
	s := &Server{
		opts:         opts,
		nextID:       1100000000000000000,
		users:        make(map[string]User),
		guildNames:   make(map[string]string),
		roles:        make(map[string][]Role),
		channels:     make(map[string]*Channel),
		messages:     make(map[string]*Message),
		order:        make(map[string][]string),
		recent:       make(map[string][]time.Time),
		writeLog:     make(map[string][]time.Time),
		commands:     make(map[string]json.RawMessage),
		interactions: make(map[string]*Interaction),
		byToken:      make(map[string]string),
		cdn:          make(map[string]*cdnEntry),
		nonces:       make(map[nonceKey]nonceEntry),
		changed:      make(chan struct{}),
	}
	s.users[opts.BotID] = s.botUser()
	for _, u := range opts.Users {
		s.users[u.ID] = u
	}
	for _, g := range opts.Guilds {
		s.guilds = append(s.guilds, g.ID)
		s.guildNames[g.ID] = g.Name
		s.roles[g.ID] = append([]Role(nil), g.Roles...)
		for _, c := range g.Channels {
			c := c
			c.GuildID = g.ID
			s.channels[c.ID] = &c
		}
	}
	s.gw.init()
	mux := http.NewServeMux()
	mux.HandleFunc("/gateway", s.serveGateway)
	mux.HandleFunc("/gateway/", s.serveGateway)
	mux.HandleFunc("/attachments/", s.serveCDN)
	mux.HandleFunc("/", s.serveREST)
	// URL is set before the server starts serving, so handlers read it
	// without a race.
	s.hs = httptest.NewUnstartedServer(mux)
	s.URL = "http://" + s.hs.Listener.Addr().String()
	s.hs.Start()
	return s, nil
}

// NewTest starts a fake Discord for a test and closes it in t.Cleanup.
// Create it before the client under test so that the client is stopped
// first (cleanups run last-in, first-out).
func NewTest(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("discordtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close drops gateway connections and stops the server.
func (s *Server) Close() {
	s.gw.closeAll()
	s.hs.Close()
}

// APIURL is the REST base to give the client (DISCORD_API_URL).
func (s *Server) APIURL() string { return s.URL + "/api/v9" }

// Token returns the bot token the fake accepts.
func (s *Server) Token() string { return s.opts.Token }

// BotID returns the bot's user id.
func (s *Server) BotID() string { return s.opts.BotID }

// AppID returns the application id.
func (s *Server) AppID() string { return s.opts.AppID }

func (s *Server) botUser() User {
	return User{ID: s.opts.BotID, Username: s.opts.BotName, Bot: true}
}

// newID returns a fresh snowflake-like id. Callers hold s.mu.
func (s *Server) newIDLocked() string {
	s.nextID++
	return strconv.FormatInt(s.nextID, 10)
}

// notifyLocked wakes WaitUntil callers. Callers hold s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitUntil blocks until cond returns true (checked after every change the
// fake sees) or ctx ends. cond must not call methods that wait.
func (s *Server) WaitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("discordtest: condition not met: %w", ctx.Err())
		case <-ch:
		case <-time.After(50 * time.Millisecond): // conditions may depend on time
		}
	}
}

// AddChannel adds (or replaces) a channel.
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[c.ID] = &c
	s.notifyLocked()
}

// DMChannel returns the id of the DM channel between the bot and a user,
// creating it when needed.
func (s *Server) DMChannel(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.channels {
		if c.Type == ChannelDM && c.Name == "dm:"+userID {
			return c.ID
		}
	}
	id := s.newIDLocked()
	s.channels[id] = &Channel{ID: id, Type: ChannelDM, Name: "dm:" + userID}
	return id
}

// Channel returns a copy of a channel.
func (s *Server) Channel(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return Channel{}, false
	}
	return *c, true
}

// Messages returns the channel's messages that were not deleted, oldest first.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, id := range s.order[channelID] {
		if m := s.messages[id]; m != nil && !m.Deleted {
			out = append(out, *m)
		}
	}
	return out
}

// BotMessages returns the bot's messages in a channel that were not deleted.
func (s *Server) BotMessages(channelID string) []Message {
	var out []Message
	for _, m := range s.Messages(channelID) {
		if m.Author.ID == s.opts.BotID {
			out = append(out, m)
		}
	}
	return out
}

// Message returns a copy of a message.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Calls returns every REST call so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the calls with the method (empty = any) whose path contains part.
func (s *Server) CallsTo(method, part string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if (method == "" || c.Method == method) && strings.Contains(c.Path, part) {
			out = append(out, c)
		}
	}
	return out
}

// RateLimited returns how many 429s the fake has answered.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

// MaxWritesInWindow returns the largest number of accepted message writes
// (posts, edits, deletes) to the channel inside any window of the given length.
func (s *Server) MaxWritesInWindow(channelID string, window time.Duration) int {
	s.mu.Lock()
	ts := append([]time.Time(nil), s.writeLog[channelID]...)
	s.mu.Unlock()
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= window {
			j++
		}
		if n := i - j + 1; n > best {
			best = n
		}
	}
	return best
}

// Commands returns the last command list bulk-overwritten for a guild
// ("" = global), as raw JSON; nil if never registered.
func (s *Server) Commands(guildID string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commands[guildID]
}

// Interaction returns a copy of the fake's view of an interaction.
func (s *Server) Interaction(id string) (Interaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[id]
	if !ok {
		return Interaction{}, false
	}
	cp := *in
	cp.Callbacks = append([]json.RawMessage(nil), in.Callbacks...)
	cp.Choices = append([]Choice(nil), in.Choices...)
	cp.Followups = append([]Followup(nil), in.Followups...)
	return cp, true
}

// FailNext makes the next request with the method whose path contains part
// fail with status and body (a JSON error object when body is empty).
func (s *Server) FailNext(method, part string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, path: part, status: status, body: body})
}

// FailAfterStore makes the next request with the method whose path contains
// part take effect (a message post stores the message and dispatches it)
// and then fail in transport with fault, as when a response is lost.
func (s *Server) FailAfterStore(method, part string, f Fault) {
	s.FailAfterStoreSkipping(method, part, 0, f)
}

// FailAfterStoreSkipping is FailAfterStore for the matching request that
// follows the next skip matching requests that take effect.
func (s *Server) FailAfterStoreSkipping(method, part string, skip int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, path: part, after: f, skip: skip})
}

// RateLimitNext makes the next request with the method whose path contains
// part answer 429 with retry_after.
func (s *Server) RateLimitNext(method, part string, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, path: part, status: http.StatusTooManyRequests, retryAfter: retryAfter})
}
