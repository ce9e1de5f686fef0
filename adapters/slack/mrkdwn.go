package slack

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// wordJoiner is an invisible character inserted into model-written mention
// syntax so that Slack never turns it into a ping.
const wordJoiner = "\u2060"

var (
	reFence      = regexp.MustCompile("^\\s{0,3}(`{3,}|~{3,})\\s*([^`\\s]*)")
	reHeading    = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	reRule       = regexp.MustCompile(`^\s{0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$`)
	reQuote      = regexp.MustCompile(`^\s{0,3}>+\s?(.*)$`)
	reBullet     = regexp.MustCompile(`^(\s*)[-*+]\s+(.*)$`)
	reOrdered    = regexp.MustCompile(`^(\s*)(\d{1,9})([.)])\s+(.*)$`)
	reTableSep   = regexp.MustCompile(`^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$`)
	reLink       = regexp.MustCompile(`!?\[([^\]\n]*)\]\(\s*<?([^()\s<>]+(?:\([^()\s]*\))?[^()\s<>]*)>?(?:\s+"[^"]*")?\s*\)`)
	reAutolink   = regexp.MustCompile(`<((?:https?|mailto):[^<>\s]+)>`)
	reBoldItalic = regexp.MustCompile(`\*\*\*([^\s*](?:[^*]*?[^\s*])?)\*\*\*`)
	reBoldStar   = regexp.MustCompile(`\*\*([^\s*](?:[^*]*?[^\s*])?)\*\*`)
	reBoldUnder  = regexp.MustCompile(`(^|[^\w])__([^\s_](?:[^_]*?[^\s_])?)__($|[^\w])`)
	reItalicStar = regexp.MustCompile(`(^|[^\w*])\*([^\s*](?:[^*]*?[^\s*])?)\*($|[^\w*])`)
	reStrike     = regexp.MustCompile(`~~([^\s~](?:[^~]*?[^\s~])?)~~`)
	reLinkToken  = regexp.MustCompile("\x00(\\d+)\x00")
)

// Private markers used while converting emphasis, replaced at the end.
const (
	markBold   = "\x01"
	markStrike = "\x02"
)

// escapeSlack escapes the three characters Slack's text format reserves.
func escapeSlack(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// broadcasts are the mentions that notify a whole channel or workspace.
var broadcasts = []string{"here", "channel", "everyone"}

// neutralizeBroadcasts breaks "@here", "@channel" and "@everyone" with an
// invisible word joiner after the "@" so that they can never notify anyone,
// whatever parse mode Slack applies — also when Markdown emphasis hugs them
// (**@here**, _@channel_, ~@everyone~, __@here__). Words that only contain
// one (me@here.com, @hereafter, x.@here) are left alone. It is the one
// place the Slack adapter neutralizes broadcasts; Discord needs none (its
// messages are sent with allowed_mentions that allow nothing).
func neutralizeBroadcasts(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '@' || !broadcastStart(s, i) {
			continue
		}
		for _, w := range broadcasts {
			end := i + 1 + len(w)
			if end <= len(s) && strings.EqualFold(s[i+1:end], w) && broadcastEnd(s, end) {
				b.WriteString(s[last : i+1])
				b.WriteString(wordJoiner)
				last = i + 1
				break
			}
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// broadcastStart reports whether the "@" at s[i] starts a word: it follows
// the start, a space, punctuation or emphasis, not a letter, digit, "." or "@".
func broadcastStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return r != '.' && r != '@' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// broadcastEnd reports whether the word ends at s[end]: the end, or
// anything but a letter or digit (emphasis such as "_" or "*" included).
func broadcastEnd(s string, end int) bool {
	if end == len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[end:])
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// neutralizeMarkdown makes model Markdown safe to send as markdown_text or in
// a markdown block: Slack's special sequences (<!here>, <!channel>,
// <!everyone>, <!subteam^…>, <@U…>) and plain @here/@channel/@everyone are
// broken with an invisible word joiner, so they render as text and ping no one.
func neutralizeMarkdown(md string) string {
	if !strings.ContainsAny(md, "<@") {
		return md
	}
	md = strings.ReplaceAll(md, "<!", "<"+wordJoiner+"!")
	md = strings.ReplaceAll(md, "<@", "<"+wordJoiner+"@")
	return neutralizeBroadcasts(md)
}

// toMrkdwn converts model-style Markdown to Slack mrkdwn: bold, italics,
// strike-through, links, headings, lists, quotes and rules are translated;
// fenced code is kept verbatim (an unclosed fence is closed); tables become
// preformatted blocks. All text is escaped (&, <, >), so nothing the model
// writes can become a mention, and plain @here/@channel/@everyone are broken.
func toMrkdwn(md string) string {
	lines := strings.Split(md, "\n")
	out := make([]string, 0, len(lines))
	var fence string // the open fence's marker, "" outside code
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSuffix(lines[i], "\r")
		if fence != "" {
			if closesFence(line, fence) {
				out = append(out, "```")
				fence = ""
				continue
			}
			out = append(out, escapeSlack(line))
			continue
		}
		if m := reFence.FindStringSubmatch(line); m != nil {
			fence = m[1]
			out = append(out, "```")
			continue
		}
		if isTableRow(line) && i+1 < len(lines) && reTableSep.MatchString(lines[i+1]) {
			out = append(out, "```")
			for ; i < len(lines) && isTableRow(lines[i]); i++ {
				out = append(out, escapeSlack(strings.TrimRight(lines[i], " \r")))
			}
			i--
			out = append(out, "```")
			continue
		}
		out = append(out, convertLine(line))
	}
	if fence != "" {
		out = append(out, "```")
	}
	return strings.Join(out, "\n")
}

func closesFence(line, fence string) bool {
	t := strings.TrimSpace(line)
	if len(t) < len(fence) || t[0] != fence[0] {
		return false
	}
	return strings.Trim(t, string(fence[0])) == ""
}

func isTableRow(line string) bool {
	t := strings.TrimSpace(line)
	return len(t) > 1 && t[0] == '|'
}

// convertLine converts one line outside code blocks.
func convertLine(line string) string {
	t := strings.TrimLeft(line, " \t")
	if t == "" {
		return ""
	}
	switch c := t[0]; {
	case c == '-' || c == '*' || c == '_' || c == '+' || c == '#' || c == '>' || (c >= '0' && c <= '9'):
	default:
		return convertInline(line) // no block syntax possible
	}
	if reRule.MatchString(line) {
		return "──────────"
	}
	if m := reHeading.FindStringSubmatch(line); m != nil {
		inner := convertInline(stripEmphasis(m[1]))
		if strings.TrimSpace(inner) == "" {
			return ""
		}
		return "*" + inner + "*"
	}
	if m := reQuote.FindStringSubmatch(line); m != nil {
		return ">" + " " + convertInline(m[1])
	}
	if m := reBullet.FindStringSubmatch(line); m != nil {
		item := m[2]
		prefix := "• "
		switch {
		case strings.HasPrefix(item, "[ ] "):
			prefix, item = "☐ ", item[4:]
		case strings.HasPrefix(item, "[x] "), strings.HasPrefix(item, "[X] "):
			prefix, item = "☑ ", item[4:]
		}
		return m[1] + prefix + convertInline(item)
	}
	if m := reOrdered.FindStringSubmatch(line); m != nil {
		return m[1] + m[2] + ". " + convertInline(m[4])
	}
	return convertInline(line)
}

// convertInline converts inline Markdown: code spans stay verbatim (escaped),
// the rest gets links and emphasis translated.
func convertInline(s string) string {
	if !strings.Contains(s, "`") {
		return convertText(s)
	}
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			b.WriteString(convertText(s))
			break
		}
		n := 0
		for i+n < len(s) && s[i+n] == '`' {
			n++
		}
		ticks := s[i : i+n]
		rest := s[i+n:]
		j := indexRun(rest, ticks)
		if j < 0 {
			// Unclosed code span: plain text.
			b.WriteString(convertText(s[:i+n]))
			s = rest
			continue
		}
		b.WriteString(convertText(s[:i]))
		code := strings.TrimSpace(rest[:j])
		if code != "" {
			b.WriteString("`" + escapeSlack(strings.ReplaceAll(code, "`", "'")) + "`")
		}
		s = rest[j+n:]
	}
	return b.String()
}

// indexRun finds a run of exactly len(ticks) backticks in s.
func indexRun(s, ticks string) int {
	for off := 0; off < len(s); {
		j := strings.Index(s[off:], ticks)
		if j < 0 {
			return -1
		}
		j += off
		end := j + len(ticks)
		if (j == 0 || s[j-1] != '`') && (end >= len(s) || s[end] != '`') {
			return j
		}
		for end < len(s) && s[end] == '`' {
			end++
		}
		off = end
	}
	return -1
}

// convertText converts a code-free text segment. Each pass runs only when
// its marker characters occur.
func convertText(s string) string {
	if s == "" {
		return s
	}
	var links []string
	keep := func(link string) string {
		links = append(links, link)
		return "\x00" + strconv.Itoa(len(links)-1) + "\x00"
	}
	if strings.Contains(s, "](") {
		s = reLink.ReplaceAllStringFunc(s, func(m string) string {
			sm := reLink.FindStringSubmatch(m)
			label, target := stripEmphasis(sm[1]), sm[2]
			if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "mailto:") {
				return m
			}
			if label == "" || label == target {
				return keep("<" + escapeSlack(target) + ">")
			}
			label = strings.NewReplacer("|", "¦").Replace(label)
			return keep("<" + escapeSlack(target) + "|" + neutralizeBroadcasts(escapeSlack(label)) + ">")
		})
	}
	if strings.Contains(s, "<http") || strings.Contains(s, "<mailto:") {
		s = reAutolink.ReplaceAllStringFunc(s, func(m string) string {
			return keep("<" + escapeSlack(m[1:len(m)-1]) + ">")
		})
	}
	s = escapeSlack(s)
	if strings.Contains(s, "*") {
		if strings.Contains(s, "***") {
			s = reBoldItalic.ReplaceAllString(s, markBold+"_${1}_"+markBold)
		}
		if strings.Contains(s, "**") {
			s = reBoldStar.ReplaceAllString(s, markBold+"${1}"+markBold)
		}
	}
	// Each of these runs a second time only if the first pass changed
	// something: adjacent matches share a boundary character.
	if strings.Contains(s, "__") {
		s = replaceTwice(reBoldUnder, s, "${1}"+markBold+"${2}"+markBold+"${3}")
	}
	if strings.Contains(s, "*") {
		s = replaceTwice(reItalicStar, s, "${1}_${2}_${3}")
	}
	if strings.Contains(s, "~~") {
		s = reStrike.ReplaceAllString(s, markStrike+"${1}"+markStrike)
	}
	if strings.ContainsAny(s, markBold+markStrike) {
		s = strings.NewReplacer(markBold, "*", markStrike, "~").Replace(s)
	}
	s = neutralizeBroadcasts(s)
	if len(links) > 0 {
		s = reLinkToken.ReplaceAllStringFunc(s, func(m string) string {
			n, err := strconv.Atoi(m[1 : len(m)-1])
			if err != nil || n >= len(links) {
				return ""
			}
			return links[n]
		})
	}
	return s
}

func replaceTwice(re *regexp.Regexp, s, repl string) string {
	out := re.ReplaceAllString(s, repl)
	if out == s {
		return s
	}
	return re.ReplaceAllString(out, repl)
}

// stripEmphasis removes Markdown emphasis markers from a short label.
func stripEmphasis(s string) string {
	return strings.NewReplacer("**", "", "__", "", "~~", "").Replace(s)
}
