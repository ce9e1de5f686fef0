package mcptest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cometbot/cometbot/internal/mcp/mcptest"
)

func TestMain(m *testing.M) {
	mcptest.ServeStdio()
	os.Exit(m.Run())
}

// exercise lists the tools and calls each one through a real SDK client.
func exercise(t *testing.T, tr sdk.Transport, log *mcptest.Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	sess, err := c.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var names []string
	for tool, err := range sess.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	if !slices.Equal(names, mcptest.ToolNames) {
		t.Fatalf("tools %v", names)
	}
	res, err := sess.CallTool(ctx, &sdk.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3}})
	if err != nil || res.IsError || res.Content[0].(*sdk.TextContent).Text != "5" {
		t.Fatalf("add: %v %+v", err, res)
	}
	res, err = sess.CallTool(ctx, &sdk.CallToolParams{Name: "fail"})
	if err != nil || !res.IsError || res.Content[0].(*sdk.TextContent).Text != "boom" {
		t.Fatalf("fail: %v %+v", err, res)
	}
	hctx, hcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := sess.CallTool(hctx, &sdk.CallToolParams{Name: "hang"})
		done <- err
	}()
	for !log.Has(mcptest.EventCall, "hang") {
		select {
		case <-ctx.Done():
			t.Fatal("hang was not called")
		case <-time.After(10 * time.Millisecond):
		}
	}
	hcancel()
	if err := <-done; err == nil {
		t.Fatal("hang answered")
	}
	for !log.Has(mcptest.EventCancelled, "hang") {
		select {
		case <-ctx.Done():
			t.Fatalf("hang was not cancelled: %+v", log.Entries())
		case <-time.After(10 * time.Millisecond):
		}
	}
	adds := log.Calls("add")
	if len(adds) != 1 || adds[0].Arg("a") != 2.0 || adds[0].Arg("b") != 3.0 {
		t.Fatalf("logged adds %+v", adds)
	}
}

func TestStdio(t *testing.T) {
	log := mcptest.NewLog(t)
	cmd := exec.Command(mcptest.Executable(t))
	for k, v := range mcptest.StdioEnv(log.Path) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	exercise(t, &sdk.CommandTransport{Command: cmd}, log)
	if es := log.Entries(); es[0].Event != mcptest.EventStart || es[0].PID == os.Getpid() {
		t.Errorf("first entry %+v", es[0])
	}
}

func TestHTTPWithAuthorization(t *testing.T) {
	log := mcptest.NewLog(t)
	h := mcptest.NewHTTPHandler(mcptest.HTTPOptions{Options: mcptest.Options{LogPath: log.Path}, Authorization: "Bearer s3cret"})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(h.Close)

	resp, err := http.Post(ts.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", resp.StatusCode)
	}
	hc := &http.Client{Transport: authRT{"Bearer s3cret"}}
	exercise(t, &sdk.StreamableClientTransport{Endpoint: ts.URL, HTTPClient: hc}, log)
}

type authRT struct{ v string }

func (a authRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", a.v)
	return http.DefaultTransport.RoundTrip(r)
}
