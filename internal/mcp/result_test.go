package mcp

import (
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestToOutput(t *testing.T) {
	out := toOutput(&sdk.CallToolResult{StructuredContent: map[string]any{"n": 1}}, 10)
	if out.Text != `{"n":1}` {
		t.Errorf("structured only: %q", out.Text)
	}
	out = toOutput(&sdk.CallToolResult{Content: []sdk.Content{
		&sdk.TextContent{Text: "a"},
		&sdk.TextContent{Text: "b"},
		&sdk.ImageContent{Data: []byte("\x89PNG\r\n\x1a\n0000")}, // no MIME type: sniffed
		&sdk.ImageContent{MIMEType: "text/html", Data: []byte("<p>")},
		&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "mem://i", MIMEType: "image/gif", Blob: []byte("GIF89a")}},
		&sdk.ResourceLink{URI: "https://x/y"},
	}, IsError: true}, 100)
	want := "a\nb\n[image: text/html, 3 B, not shown]\n[resource link: <https://x/y>]"
	if out.Text != want || !out.IsError || len(out.Images) != 2 ||
		out.Images[0].MIMEType != "image/png" || out.Images[1].MIMEType != "image/gif" {
		t.Errorf("got %q %+v", out.Text, out.Images)
	}
	for n, want := range map[int]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 20 << 20: "20 MiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
