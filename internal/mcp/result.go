package mcp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm"
)

// toOutput turns a tools/call result into a bot.ToolOutput: text blocks
// joined by newlines; images (decoded from base64 by the SDK) as Images when
// at most maxImage bytes, else described; audio, resource links and
// embedded resources described in the text (an embedded text resource is
// included, an embedded image kept as an image). When the result has no
// content but structured content, that is the text, as JSON.
func toOutput(res *sdk.CallToolResult, maxImage int) bot.ToolOutput {
	out := bot.ToolOutput{IsError: res.IsError}
	var parts []string
	addImage := func(what, mime string, data []byte) {
		if mime == "" {
			mime = http.DetectContentType(data)
		}
		switch {
		case !strings.HasPrefix(mime, "image/"):
			parts = append(parts, fmt.Sprintf("[%s: %s, %s, not shown]", what, mime, size(len(data))))
		case len(data) > maxImage:
			parts = append(parts, fmt.Sprintf("[%s: %s, %s, not shown: larger than the %s limit]", what, mime, size(len(data)), size(maxImage)))
		default:
			out.Images = append(out.Images, llm.Image{MIMEType: mime, Data: data})
		}
	}
	for _, c := range res.Content {
		switch c := c.(type) {
		case *sdk.TextContent:
			parts = append(parts, c.Text)
		case *sdk.ImageContent:
			addImage("image", c.MIMEType, c.Data)
		case *sdk.AudioContent:
			parts = append(parts, fmt.Sprintf("[audio: %s, %s, not shown]", orUnknown(c.MIMEType), size(len(c.Data))))
		case *sdk.ResourceLink:
			parts = append(parts, describeLink(c))
		case *sdk.EmbeddedResource:
			r := c.Resource
			switch {
			case r == nil:
				parts = append(parts, "[empty embedded resource]")
			case r.Blob != nil && strings.HasPrefix(r.MIMEType, "image/"):
				addImage("image "+r.URI, r.MIMEType, r.Blob)
			case r.Blob != nil:
				parts = append(parts, fmt.Sprintf("[resource %s: %s, %s, not shown]", r.URI, orUnknown(r.MIMEType), size(len(r.Blob))))
			default:
				head := "[resource " + r.URI
				if r.MIMEType != "" {
					head += " (" + r.MIMEType + ")"
				}
				parts = append(parts, head+"]\n"+r.Text)
			}
		default:
			b, err := json.Marshal(c)
			if err != nil {
				parts = append(parts, fmt.Sprintf("[content of type %T, not shown]", c))
			} else {
				parts = append(parts, "[unsupported content, not shown: "+truncate(string(b), 200)+"]")
			}
		}
	}
	if len(res.Content) == 0 && res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			parts = append(parts, string(b))
		}
	}
	out.Text = strings.Join(parts, "\n")
	return out
}

func describeLink(l *sdk.ResourceLink) string {
	var b strings.Builder
	b.WriteString("[resource link: ")
	name := l.Title
	if name == "" {
		name = l.Name
	}
	if name != "" {
		b.WriteString(name + " ")
	}
	b.WriteString("<" + l.URI + ">")
	if l.MIMEType != "" {
		b.WriteString(" " + l.MIMEType)
	}
	if l.Size != nil {
		b.WriteString(", " + size(int(*l.Size)))
	}
	if l.Description != "" {
		b.WriteString(": " + l.Description)
	}
	b.WriteString("]")
	return b.String()
}

func orUnknown(mime string) string {
	if mime == "" {
		return "unknown type"
	}
	return mime
}

// size prints a byte count for people: "512 B", "3.4 KiB", "20 MiB".
func size(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<10))) + " KiB"
	default:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<20))) + " MiB"
	}
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
