package bottest

import (
	"fmt"
	"strings"
)

// MarkdownAnswer returns a realistic model answer of at least n bytes:
// headings, paragraphs, nested lists, inline code, links, strike-through, a
// table, a quote and fenced code blocks — for benchmarks of the splitter and
// the platform converters.
func MarkdownAnswer(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
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
