package bot

import (
	"strings"
	"unicode/utf8"
)

// Split breaks Markdown text into parts of at most limit runes each, for
// platforms that cap the size of one message. It cuts on the last paragraph
// break that fits, else the last line break, else the last space, else at
// the limit. A cut never leaves a code fence open: a part that ends inside
// a fence is closed with the fence marker, and the next part re-opens it with
// the same fence line (so ```go stays ```go). Whitespace at a cut is dropped.
//
// Text that already fits is returned as one part; empty text returns nil.
// limit must leave room for a fence line; values below 16 are raised to 16.
func Split(text string, limit int) []string {
	if limit < 16 {
		limit = 16
	}
	text = strings.TrimRight(text, " \t\r\n")
	if text == "" {
		return nil
	}
	maxLine := limit / 4
	var parts []string
	fence := "" // the open fence line carried into the next part, e.g. "```go"
	rest := text
	for rest != "" {
		prefix := ""
		if fence != "" {
			prefix = fence + "\n"
		}
		if utf8.RuneCountInString(prefix)+utf8.RuneCountInString(rest) <= limit {
			parts = append(parts, prefix+rest)
			break
		}
		// Room for the body, keeping space for a closing fence line.
		budget := limit - utf8.RuneCountInString(prefix) - (len("\n") + maxFenceLen(fence, rest, limit, maxLine))
		if budget < 1 {
			budget = 1
		}
		window := rest[:byteIndexOfRune(rest, budget)]
		cut := chooseCut(window)
		// Never cut inside a fence line: a truncated fence line changes meaning.
		lineStart := strings.LastIndexByte(rest[:cut], '\n') + 1
		if lineStart > 0 && lineStart < cut && isFenceLine(fullLine(rest, lineStart), maxLine) {
			cut = lineStart - 1
		}
		chunk := strings.TrimRight(rest[:cut], " \t\r\n")
		if chunk == "" { // only whitespace before the cut: force progress
			cut = len(window)
			chunk = window
		}
		// Fence state after the chunk, reading a cut line as the whole line.
		lineStart = strings.LastIndexByte(rest[:cut], '\n') + 1
		end := fenceAfter(fenceAfter(fence, rest[:lineStart], maxLine), fullLine(rest, lineStart), maxLine)
		next := rest[cut:]
		if end != "" {
			// Inside code, keep the next line's indentation: drop only line breaks.
			next = strings.TrimLeft(next, "\r\n")
		} else {
			next = strings.TrimLeft(next, " \t\r\n")
		}
		part := prefix + chunk
		if end != "" {
			part += "\n" + fenceMarker(end)
		}
		parts = append(parts, part)
		fence = end
		rest = next
	}
	return parts
}

// chooseCut returns the byte offset in window where the part should end.
func chooseCut(window string) int {
	min := len(window) / 3
	if i := strings.LastIndex(window, "\n\n"); i > min {
		return i
	}
	if i := strings.LastIndexByte(window, '\n'); i > min {
		return i
	}
	if i := strings.LastIndexByte(window, ' '); i > min {
		return i
	}
	return len(window)
}

// fenceAfter returns the fence line still open after chunk, given the fence
// open before it ("" when none).
func fenceAfter(open, chunk string, maxLine int) string {
	for line := range strings.SplitSeq(chunk, "\n") {
		marker, info, ok := parseFence(line, maxLine)
		if !ok {
			continue
		}
		if open == "" {
			open = strings.TrimSpace(marker + info)
			continue
		}
		if info == "" && marker[0] == open[0] && len(marker) >= len(fenceMarker(open)) {
			open = ""
		}
	}
	return open
}

// parseFence reports whether line is a code fence (``` or ~~~, indented at
// most three spaces) and returns its marker and info string.
//
// Fence lines longer than maxLine (a quarter of the part size) are read as
// plain text: a fence that cannot be re-opened within a part is no fence.
func parseFence(line string, maxLine int) (marker, info string, ok bool) {
	if len(line) > maxLine {
		return "", "", false
	}
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || len(t) < 3 {
		return "", "", false
	}
	c := t[0]
	if c != '`' && c != '~' {
		return "", "", false
	}
	n := 0
	for n < len(t) && t[n] == c {
		n++
	}
	if n < 3 {
		return "", "", false
	}
	info = strings.TrimSpace(t[n:])
	if c == '`' && strings.Contains(info, "`") {
		return "", "", false
	}
	return t[:n], info, true
}

// fenceMarker returns the run of fence characters that opens fence line f.
func fenceMarker(f string) string {
	if f == "" {
		return ""
	}
	n := 0
	for n < len(f) && f[n] == f[0] {
		n++
	}
	return f[:n]
}

// maxFenceLen returns how much room a closing fence may need in this part.
func maxFenceLen(open, rest string, limit, maxLine int) int {
	n := len(fenceMarker(open))
	// A fence opened inside this part may be longer than ```; look at the
	// fence lines that could fall in the window.
	window := rest[:byteIndexOfRune(rest, limit)]
	for line := range strings.SplitSeq(window, "\n") {
		if m, _, ok := parseFence(line, maxLine); ok && len(m) > n {
			n = len(m)
		}
	}
	if n == 0 {
		return -1 // no fence can be open at the cut: no room needed, not even the newline
	}
	return n
}

// byteIndexOfRune returns the byte offset of the n-th rune of s (len(s) if
// s has fewer runes).
func byteIndexOfRune(s string, n int) int {
	i := 0
	for pos := range s {
		if i == n {
			return pos
		}
		i++
	}
	return len(s)
}

// fullLine returns the whole line of s that starts at byte offset start.
func fullLine(s string, start int) string {
	if i := strings.IndexByte(s[start:], '\n'); i >= 0 {
		return s[start : start+i]
	}
	return s[start:]
}

// isFenceLine reports whether line opens or closes a code fence.
func isFenceLine(line string, maxLine int) bool {
	_, _, ok := parseFence(line, maxLine)
	return ok
}
