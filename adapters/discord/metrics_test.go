package discord

import "testing"

func TestRouteLabel(t *testing.T) {
	for path, want := range map[string]string{
		"/channels/112233445566778899/messages":                         "/channels/:id/messages",
		"/channels/1122/messages/3344?wait=true":                        "/channels/:id/messages/:id",
		"/webhooks/99887766/aW50ZXJhY3Rpb24tdG9rZW4/messages/@original": "/webhooks/:id/:id/messages/@original",
		"/channels/1/messages/2/reactions/%F0%9F%91%8D/@me":             "/channels/:id/messages/:id/reactions/:id/@me",
		"/gateway/bot": "/gateway/bot",
	} {
		if got := routeLabel(path); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", path, got, want)
		}
	}
}
