package discordtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func do(t *testing.T, s *Server, method, path, body string, auth bool) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.APIURL()+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bot "+s.Token())
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestREST(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{WriteBudget: 3, WriteWindow: time.Second})
	for _, tc := range []struct {
		name, method, path, body string
		auth                     bool
		status, code             int
	}{
		{"unmodelled route", "GET", "/guilds/1/members", "", true, 404, 0},
		{"unmodelled method", "PUT", "/channels/" + GeneralChannel, "{}", true, 404, 0},
		{"no token", "GET", "/users/@me", "", false, 401, 0},
		{"me", "GET", "/users/@me", "", true, 200, 0},
		{"unknown channel", "GET", "/channels/1", "", true, 404, 10003},
		{"empty message", "POST", "/channels/" + GeneralChannel + "/messages", `{"content":" "}`, true, 400, 50006},
		{"too long", "POST", "/channels/" + GeneralChannel + "/messages", `{"content":"` + strings.Repeat("x", 2001) + `"}`, true, 400, 50035},
		{"unknown message edit", "PATCH", "/channels/" + GeneralChannel + "/messages/5", `{"content":"x"}`, true, 404, 10008},
	} {
		resp, body := do(t, s, tc.method, tc.path, tc.body, tc.auth)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
		if tc.code != 0 && body["code"] != float64(tc.code) {
			t.Errorf("%s: code %v, want %d", tc.name, body["code"], tc.code)
		}
	}
	calls := s.Calls()
	if len(calls) != 8 || calls[0].Path != "/guilds/1/members" || calls[0].Status != 404 || calls[2].Authorized {
		t.Errorf("calls = %+v", calls)
	}

	// The per-channel write budget: 3 per second here, then 429.
	var remaining []string
	for i := 0; i < 3; i++ {
		resp, _ := do(t, s, "POST", "/channels/"+GeneralChannel+"/messages", `{"content":"hi"}`, true)
		if resp.StatusCode != 200 {
			t.Fatalf("post %d: %d", i, resp.StatusCode)
		}
		remaining = append(remaining, resp.Header.Get("X-RateLimit-Remaining"))
	}
	if strings.Join(remaining, ",") != "2,1,0" {
		t.Errorf("X-RateLimit-Remaining = %v", remaining)
	}
	resp, body := do(t, s, "POST", "/channels/"+GeneralChannel+"/messages", `{"content":"hi"}`, true)
	if resp.StatusCode != 429 || body["retry_after"] == nil || body["global"] != false || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over budget: %d %v %v", resp.StatusCode, body, resp.Header)
	}
	if s.RateLimited() != 1 || s.MaxWritesInWindow(GeneralChannel, time.Second) != 3 {
		t.Errorf("limited %d, max writes %d", s.RateLimited(), s.MaxWritesInWindow(GeneralChannel, time.Second))
	}
	// Another channel has its own budget.
	if resp, _ := do(t, s, "POST", "/channels/"+LockedChannel+"/messages", `{"content":"hi"}`, true); resp.StatusCode != 200 {
		t.Errorf("other channel: %d", resp.StatusCode)
	}
}

type frameIn struct {
	Op   int             `json:"op"`
	Seq  int64           `json:"s"`
	Type string          `json:"t"`
	Data json.RawMessage `json:"d"`
}

func dial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/gateway/?v=9&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func read(t *testing.T, ws *websocket.Conn) frameIn {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f frameIn
	if err := ws.ReadJSON(&f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGatewayIdentifyHeartbeatResume(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	ws := dial(t, s)
	if f := read(t, ws); f.Op != 10 || !strings.Contains(string(f.Data), "heartbeat_interval") {
		t.Fatalf("first frame = %+v", f)
	}
	_ = ws.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": "Bot " + s.Token(), "intents": 513}})
	ready := read(t, ws)
	var rd struct {
		SessionID string `json:"session_id"`
		User      struct{ ID string }
	}
	_ = json.Unmarshal(ready.Data, &rd)
	if ready.Type != "READY" || ready.Seq != 1 || rd.User.ID != DefaultBotID || rd.SessionID == "" {
		t.Fatalf("READY = %+v", ready)
	}
	if f := read(t, ws); f.Type != "GUILD_CREATE" || f.Seq != 2 {
		t.Fatalf("GUILD_CREATE = %+v", f)
	}
	_ = ws.WriteJSON(map[string]any{"op": 1, "d": 2})
	if f := read(t, ws); f.Op != 11 {
		t.Fatalf("heartbeat ack = %+v", f)
	}
	m := s.UserMessage(Post{ChannelID: GeneralChannel, Content: "<@" + DefaultBotID + "> hi"})
	f := read(t, ws)
	if f.Type != "MESSAGE_CREATE" || f.Seq != 3 || !strings.Contains(string(f.Data), `"mentions":[{`) {
		t.Fatalf("MESSAGE_CREATE = %+v %s", f, f.Data)
	}

	// Drop; an event dispatched meanwhile and the last delivered one are replayed on RESUME.
	s.DropConnection(1)
	m2 := s.UserMessage(Post{ChannelID: GeneralChannel, Content: "while away"})
	ws2 := dial(t, s)
	read(t, ws2) // HELLO
	_ = ws2.WriteJSON(map[string]any{"op": 6, "d": map[string]any{"token": "Bot " + s.Token(), "session_id": rd.SessionID, "seq": 3}})
	var got []string
	for i := 0; i < 3; i++ {
		f := read(t, ws2)
		var d struct{ ID string }
		_ = json.Unmarshal(f.Data, &d)
		got = append(got, f.Type+":"+d.ID)
	}
	want := []string{"MESSAGE_CREATE:" + m.ID, "MESSAGE_CREATE:" + m2.ID, "RESUMED:"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after RESUME got %v, want %v", got, want)
	}
	if s.Resumes() != 1 || s.Identifies() != 1 {
		t.Errorf("resumes %d identifies %d", s.Resumes(), s.Identifies())
	}

	// A bad token is refused with close code 4004.
	ws3 := dial(t, s)
	read(t, ws3)
	_ = ws3.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": "Bot nope"}})
	_ = ws3.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws3.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4004 {
		t.Errorf("bad token: %v", err)
	}
}

func TestNonces(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{WriteBudget: -1})
	other := s.DMChannel(AliceID)
	post := func(channel, body string) (int, string) {
		t.Helper()
		resp, out := do(t, s, "POST", "/channels/"+channel+"/messages", body, true)
		id, _ := out["id"].(string)
		return resp.StatusCode, id
	}
	_, first := post(GeneralChannel, `{"content":"one","nonce":"n-1","enforce_nonce":true}`)
	tests := []struct {
		name     string
		channel  string
		body     string
		status   int
		sameID   bool // the message created first comes back
		messages int  // bot messages in the channel afterwards
	}{
		{"retry with the same nonce", GeneralChannel, `{"content":"one","nonce":"n-1","enforce_nonce":true}`, 200, true, 1},
		{"same nonce, not enforced", GeneralChannel, `{"content":"one","nonce":"n-1"}`, 200, false, 2},
		{"same nonce in another channel", other, `{"content":"one","nonce":"n-1","enforce_nonce":true}`, 200, false, 1},
		{"integer nonce", GeneralChannel, `{"content":"two","nonce":12345,"enforce_nonce":true}`, 200, false, 3},
		{"nonce too long", GeneralChannel, `{"content":"x","nonce":"` + strings.Repeat("n", 26) + `","enforce_nonce":true}`, 400, false, 3},
	}
	for _, tc := range tests {
		status, id := post(tc.channel, tc.body)
		if status != tc.status || (id == first) != tc.sameID {
			t.Errorf("%s: status %d id %s (first %s)", tc.name, status, id, first)
		}
		if n := len(s.BotMessages(tc.channel)); n != tc.messages {
			t.Errorf("%s: %d bot messages, want %d", tc.name, n, tc.messages)
		}
	}
	if m, _ := s.Message(first); m.Nonce != "n-1" {
		t.Errorf("stored nonce %q", m.Nonce)
	}
}

func TestFailAfterStore(t *testing.T) {
	t.Parallel()
	for _, f := range []Fault{FaultBadResponse, FaultDrop} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			s := NewTest(t, Options{WriteBudget: -1})
			s.FailAfterStore("POST", "/messages", f)
			req, _ := http.NewRequest("POST", s.APIURL()+"/channels/"+GeneralChannel+"/messages", strings.NewReader(`{"content":"lost","nonce":"n1","enforce_nonce":true}`))
			req.Header.Set("Authorization", "Bot "+s.Token())
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				var m map[string]any
				err = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
			}
			if err == nil {
				t.Fatal("the answer arrived intact")
			}
			if ms := s.BotMessages(GeneralChannel); len(ms) != 1 || ms[0].Content != "lost" {
				t.Fatalf("stored %+v", ms)
			}
			if c := s.CallsTo("POST", "/messages"); len(c) != 1 || c[0].Fault != f {
				t.Errorf("calls %+v", c)
			}
			// The retry with the nonce returns the stored message.
			_, out := do(t, s, "POST", "/channels/"+GeneralChannel+"/messages", `{"content":"lost","nonce":"n1","enforce_nonce":true}`, true)
			if out["content"] != "lost" || len(s.BotMessages(GeneralChannel)) != 1 {
				t.Errorf("retry: %v", out)
			}
		})
	}
}
