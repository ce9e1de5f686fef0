package bot

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// reassemble removes the fence lines Split added at part boundaries and
// joins the parts back together, so the result can be compared with the input.
func reassemble(parts []string, limit int) string {
	var b strings.Builder
	carry := ""
	for i, p := range parts {
		if carry != "" {
			p = strings.TrimPrefix(p, carry+"\n")
		}
		next := fenceAfter(carry, p, limit/4)
		if i < len(parts)-1 {
			if j := strings.LastIndexByte(p, '\n'); j >= 0 {
				body := p[:j]
				if open := fenceAfter(carry, body, limit/4); open != "" && strings.HasPrefix(parts[i+1], open+"\n") {
					p, next = body, open // the close line was synthetic
				}
			}
		}
		carry = next
		b.WriteString(p)
	}
	return b.String()
}

func normalizeSpace(s string) string { return strings.Join(strings.Fields(s), "") }

func TestSplit(t *testing.T) {
	code := "```go\n" + strings.Repeat("fmt.Println(\"hello, world\")\n", 40) + "```"
	tests := []struct {
		name      string
		text      string
		limit     int
		wantParts int // 0: don't check
	}{
		{"empty", "", 100, 0},
		{"fits", "hello world", 100, 1},
		{"exact limit", strings.Repeat("a", 100), 100, 1},
		{"paragraphs", strings.Repeat("Lorem ipsum dolor sit amet.\n\n", 20), 100, 0},
		{"lines", strings.Repeat("one line of text\n", 50), 120, 0},
		{"words", strings.Repeat("word ", 200), 50, 0},
		{"no spaces", strings.Repeat("x", 1000), 100, 10},
		{"code fence", "Intro.\n\n" + code + "\n\nOutro.", 200, 0},
		{"tilde fence", "~~~python\n" + strings.Repeat("print(1)\n", 60) + "~~~\nafter", 120, 0},
		{"unicode", strings.Repeat("héllo wörld 🌍 ", 300), 200, 0},
		{"unclosed fence", "```\n" + strings.Repeat("code line\n", 100), 150, 0},
		{"long fence marker", "````md\n```\ninner\n```\n" + strings.Repeat("text\n", 80) + "````", 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := Split(tt.text, tt.limit)
			if tt.text == "" {
				if parts != nil {
					t.Fatalf("Split(empty) = %q, want nil", parts)
				}
				return
			}
			if tt.wantParts > 0 && len(parts) != tt.wantParts {
				t.Errorf("got %d parts, want %d", len(parts), tt.wantParts)
			}
			for i, p := range parts {
				if n := utf8.RuneCountInString(p); n > tt.limit {
					t.Errorf("part %d has %d runes > limit %d", i, n, tt.limit)
				}
				if strings.TrimSpace(p) == "" {
					t.Errorf("part %d is blank", i)
				}
				if !utf8.ValidString(p) {
					t.Errorf("part %d is not valid UTF-8", i)
				}
				// Every part but an unclosed original's last has balanced fences.
				if i < len(parts)-1 && fenceAfter("", p, tt.limit/4) != "" {
					t.Errorf("part %d leaves a fence open:\n%s", i, p)
				}
			}
			if got, want := normalizeSpace(reassemble(parts, tt.limit)), normalizeSpace(tt.text); got != want {
				t.Errorf("reassembled text differs\n got: %.200q\nwant: %.200q", got, want)
			}
		})
	}
}

func TestSplitReopensFenceWithInfo(t *testing.T) {
	text := "```python\n" + strings.Repeat("x = 1\n", 100) + "```"
	parts := Split(text, 100)
	if len(parts) < 3 {
		t.Fatalf("want several parts, got %d", len(parts))
	}
	for i, p := range parts {
		if !strings.HasPrefix(p, "```python\n") {
			t.Errorf("part %d does not (re)open the python fence: %.30q", i, p)
		}
		if !strings.HasSuffix(p, "```") {
			t.Errorf("part %d does not close the fence: %q", i, p[len(p)-10:])
		}
	}
}

func TestSplitPrefersParagraphs(t *testing.T) {
	p1 := strings.Repeat("a", 60)
	p2 := strings.Repeat("b", 60)
	parts := Split(p1+"\n\n"+p2, 100)
	if len(parts) != 2 || parts[0] != p1 || parts[1] != p2 {
		t.Fatalf("got %q", parts)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("hello\n\n```go\ncode\n```\nmore", 20)
	f.Add(strings.Repeat("word ", 100), 30)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if limit < 16 || limit > 5000 || !utf8.ValidString(text) {
			return
		}
		parts := Split(text, limit)
		for i, p := range parts {
			if n := utf8.RuneCountInString(p); n > limit {
				t.Fatalf("part %d has %d runes > %d", i, n, limit)
			}
		}
		if got, want := normalizeSpace(reassemble(parts, limit)), normalizeSpace(text); got != want {
			t.Fatalf("reassembled text differs\n got: %q\nwant: %q", got, want)
		}
	})
}

func TestSplitKeepsIndentationInCode(t *testing.T) {
	var b strings.Builder
	b.WriteString("```python\ndef f():\n")
	for range 60 {
		b.WriteString("        return 1\n")
	}
	b.WriteString("```")
	for i, p := range Split(b.String(), 200) {
		for _, line := range strings.Split(p, "\n") {
			if line != "```python" && line != "```" && line != "def f():" && line != "        return 1" {
				t.Fatalf("part %d has a mangled line %q", i, line)
			}
		}
	}
}
