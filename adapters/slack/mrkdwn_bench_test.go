package slack

import (
	"fmt"
	"strings"
	"testing"
)

// answer20K returns a realistic 20 KB Markdown answer (the same shape as
// bot's splitter benchmark): headings, paragraphs, lists, inline code,
// links, a table and fenced code blocks.
func answer20K() string {
	var b strings.Builder
	for i := 0; b.Len() < 20_000; i++ {
		fmt.Fprintf(&b, "## Step %d: wire the **handler**\n\n", i+1)
		b.WriteString("The handler reads the request, checks the `Authorization` header and, if the token is *valid*, ")
		b.WriteString("passes the body to the [decoder](https://pkg.go.dev/encoding/json). Errors are wrapped with `%w` ")
		b.WriteString("so that callers can use `errors.Is`; nothing is logged twice.\n\n")
		b.WriteString("- read the body with a limit\n- decode it into the request type\n  - reject unknown fields\n- answer 400 on ~~any~~ a malformed body\n\n")
		if i%2 == 0 {
			b.WriteString("```go\nfunc handle(w http.ResponseWriter, r *http.Request) {\n\tbody, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))\n\tif err != nil {\n\t\thttp.Error(w, \"read body\", http.StatusBadRequest)\n\t\treturn\n\t}\n\n\tvar req Request\n\tif err := json.Unmarshal(body, &req); err != nil {\n\t\thttp.Error(w, err.Error(), http.StatusBadRequest)\n\t\treturn\n\t}\n\tfmt.Fprintf(w, \"ok %s\\n\", req.Name)\n}\n```\n\n")
		} else {
			b.WriteString("| field | type | meaning |\n|---|---|---|\n| name | string | who asked |\n| size | int | bytes read |\n\n> Note: keep the limit small; a 1 MiB body is plenty for JSON.\n\n")
		}
	}
	return b.String()
}

// BenchmarkMrkdwn converts a 20 KB Markdown answer to Slack mrkdwn.
func BenchmarkMrkdwn(b *testing.B) {
	md := answer20K()
	b.SetBytes(int64(len(md)))
	b.ReportAllocs()
	for b.Loop() {
		if out := toMrkdwn(md); len(out) < len(md)/2 {
			b.Fatalf("output too short: %d bytes", len(out))
		}
	}
}
