package slack

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestToMrkdwn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Hello, world.", "Hello, world."},
		{"bold", "This is **bold** text", "This is *bold* text"},
		{"bold underscores", "This is __bold__ text", "This is *bold* text"},
		{"italic star", "an *italic* word", "an _italic_ word"},
		{"italic underscore kept", "an _italic_ word", "an _italic_ word"},
		{"bold italic", "***both***", "*_both_*"},
		{"adjacent italics", "*a* *b*", "_a_ _b_"},
		{"strike", "~~gone~~ here", "~gone~ here"},
		{"multiplication untouched", "2 * 3 * 4 = 24", "2 * 3 * 4 = 24"},
		{"snake case untouched", "call my_func_name now", "call my_func_name now"},
		{"link", "see [the docs](https://example.com/a?b=1&c=2)", "see <https://example.com/a?b=1&amp;c=2|the docs>"},
		{"link same label", "[https://x.io](https://x.io)", "<https://x.io>"},
		{"autolink", "go to <https://x.io/p>", "go to <https://x.io/p>"},
		{"relative link kept", "[a](./b)", "[a](./b)"},
		{"image", "![diagram](https://x.io/d.png)", "<https://x.io/d.png|diagram>"},
		{"heading", "## Setup **steps**", "*Setup steps*"},
		{"heading h1", "# Title", "*Title*"},
		{"bullets", "- one\n* two\n+ three", "• one\n• two\n• three"},
		{"nested bullet", "- a\n  - b", "• a\n  • b"},
		{"tasks", "- [ ] todo\n- [x] done", "☐ todo\n☑ done"},
		{"ordered", "1. first\n2) second", "1. first\n2. second"},
		{"quote", "> quoted **text**", "> quoted *text*"},
		{"rule", "---", "──────────"},
		{"escape", "a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"},
		{"inline code verbatim", "use `**not bold** <x>` here", "use `**not bold** &lt;x&gt;` here"},
		{"double backtick code", "``a `b` c``", "`a 'b' c`"},
		{"unclosed backtick", "a ` b **c**", "a ` b *c*"},
		{"fence", "```go\nfunc main() { a := b && c }\n```", "```\nfunc main() { a := b &amp;&amp; c }\n```"},
		{"fence keeps markdown verbatim", "```\n**x** - y\n# z\n```", "```\n**x** - y\n# z\n```"},
		{"unclosed fence closed", "text\n```python\nprint(1)", "text\n```\nprint(1)\n```"},
		{"tilde fence", "~~~\ncode\n~~~", "```\ncode\n```"},
		{"table", "| a | b |\n|---|---|\n| 1 | 2 |\nafter", "```\n| a | b |\n|---|---|\n| 1 | 2 |\n```\nafter"},
		{"here neutralized", "hey @here and @channel and @Everyone", "hey @\u2060here and @\u2060channel and @\u2060Everyone"},
		{"special mentions escaped", "<!here> <!channel> <!everyone> <!subteam^S1> <@U123>",
			"&lt;!here&gt; &lt;!channel&gt; &lt;!everyone&gt; &lt;!subteam^S1&gt; &lt;@U123&gt;"},
		{"mail address untouched", "mail me@here.com", "mail me@here.com"},
		{"adjacent broadcasts", "@here@here (@channel)", "@\u2060here@here (@\u2060channel)"},
		{"bold broadcast", "**@here** now", "*@\u2060here* now"},
		{"italic broadcast", "_@channel_ now", "_@\u2060channel_ now"},
		{"strike broadcast", "~@everyone~ and ~~@here~~", "~@\u2060everyone~ and ~@\u2060here~"},
		{"underscore bold broadcast", "__@here__", "*@\u2060here*"},
		{"star italic broadcast", "*@channel*", "_@\u2060channel_"},
		{"longer words untouched", "@hereafter @channels @everyones x.@here", "@hereafter @channels @everyones x.@here"},
		{"crlf", "a\r\nb", "a\nb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toMrkdwn(tt.in); got != tt.want {
				t.Errorf("toMrkdwn(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestToMrkdwnModelStyleAnswer(t *testing.T) {
	t.Parallel()
	in := "## Summary\n\nHere is **how** to do it:\n\n1. Install with `go install ./...`\n2. Run *carefully*\n\n" +
		"```bash\nexport A=1 && echo \"<ok>\"\n```\n\n| Model | Price |\n|-------|-------|\n| gpt-4o | $2 |\n\n" +
		"> Note: see [docs](https://example.com).\n\n- item with ~~old~~ new\n\n@here done."
	want := "*Summary*\n\nHere is *how* to do it:\n\n1. Install with `go install ./...`\n2. Run _carefully_\n\n" +
		"```\nexport A=1 &amp;&amp; echo \"&lt;ok&gt;\"\n```\n\n```\n| Model | Price |\n|-------|-------|\n| gpt-4o | $2 |\n```\n\n" +
		"> Note: see <https://example.com|docs>.\n\n• item with ~old~ new\n\n@\u2060here done."
	if got := toMrkdwn(in); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestNeutralizeMarkdown(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"<!here> hi", "<\u2060!here> hi"},
		{"<!subteam^S1|@team>", "<\u2060!subteam^S1|@team>"},
		{"ping <@U1> please", "ping <\u2060@U1> please"},
		{"@everyone look", "@\u2060everyone look"},
		{"**@here** _@channel_ ~@everyone~ ***@HERE***", "**@\u2060here** _@\u2060channel_ ~@\u2060everyone~ ***@\u2060HERE***"},
		{"already @\u2060here", "already @\u2060here"},
		{"me@here.com", "me@here.com"},
		{"**bold** <b>", "**bold** <b>"},
	}
	for _, tt := range tests {
		if got := neutralizeMarkdown(tt.in); got != tt.want {
			t.Errorf("neutralizeMarkdown(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRenderMrkdwnSplitsLongAnswers(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; b.Len() < 12000; i++ {
		b.WriteString("Paragraph with **bold** & <tags> number ")
		b.WriteString(strings.Repeat("word ", 20))
		b.WriteString("\n\n")
		if i%7 == 3 {
			b.WriteString("```go\n" + strings.Repeat("x := a && b\n", 30) + "```\n\n")
		}
	}
	parts := renderMrkdwn(b.String(), 3500, 3900)
	if len(parts) < 4 {
		t.Fatalf("got %d parts", len(parts))
	}
	for i, p := range parts {
		if n := utf8.RuneCountInString(p); n > 3900 {
			t.Errorf("part %d has %d runes", i, n)
		}
		if strings.Count(p, "```")%2 != 0 {
			t.Errorf("part %d has an unbalanced fence", i)
		}
	}
	// Escaping-heavy text expands on conversion: parts are split again.
	heavy := strings.Repeat("<&>", 3000)
	for i, p := range renderMrkdwn(heavy, 3500, 3900) {
		if n := utf8.RuneCountInString(p); n > 3900 {
			t.Errorf("heavy part %d has %d runes", i, n)
		}
	}
}

func FuzzToMrkdwn(f *testing.F) {
	f.Add("**a** _b_ `c` [d](https://e) <!here> @channel\n```\nx\n")
	f.Add("**@here** _@channel_ ~@everyone~ me@here.com")
	f.Fuzz(func(t *testing.T, s string) {
		out := toMrkdwn(s)
		for _, bad := range []string{"<!here", "<!channel", "<!everyone", "<!subteam", "<@"} {
			if strings.Contains(out, bad) {
				t.Fatalf("toMrkdwn(%q) = %q contains %q", s, out, bad)
			}
		}
		fences := 0
		for _, line := range strings.Split(out, "\n") {
			if line == "```" {
				fences++
			}
		}
		if fences%2 != 0 {
			t.Fatalf("unbalanced fences in %q", out)
		}
	})
}
