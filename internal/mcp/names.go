package mcp

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// maxSpecName is the longest tool name every wire format accepts.
const maxSpecName = 64

// hashLen is the number of hex digits of the suffix that keeps cut or
// colliding names apart.
const hashLen = 8

// specName is the name a tool is offered to the model under:
// "<server>_<tool>" with every character outside [A-Za-z0-9_-] replaced by
// '_'. A name longer than 64 bytes is cut and ends with "_" and 8 hex digits
// of a hash of the server and tool names (see hashedName).
func specName(server, tool string) string {
	n := sanitize(server + "_" + tool)
	if len(n) > maxSpecName {
		return hashedName(server, tool)
	}
	return n
}

// hashedName is specName with a hash suffix, always within 64 bytes: used
// for names that are too long and for names that collide (two tools whose
// sanitized names are equal: "a.b" and "a_b", or server "a_b" tool "c" and
// server "a" tool "b_c").
func hashedName(server, tool string) string {
	sum := sha256.Sum256([]byte(server + "\x00" + tool))
	suffix := "_" + hex.EncodeToString(sum[:])[:hashLen]
	n := sanitize(server + "_" + tool)
	if len(n) > maxSpecName-len(suffix) {
		n = n[:maxSpecName-len(suffix)]
	}
	return n + suffix
}

// sanitize replaces each rune outside [A-Za-z0-9_-] (and each invalid UTF-8
// byte) with '_'.
func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if nameByte(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('_')
			}
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		b.WriteByte('_')
		i += size
	}
	return b.String()
}

// assignNames returns the spec name of each (server, tool) pair: specName,
// or hashedName for every pair whose specName is shared with another pair,
// so that names do not depend on order. ok[i] is false for a pair listed
// before (a server that lists a tool twice) and for one whose name is still
// taken (only possible on a hash collision): such a tool must not be offered.
func assignNames(pairs [][2]string) (names []string, ok []bool) {
	names = make([]string, len(pairs))
	ok = make([]bool, len(pairs))
	first := make(map[[2]string]bool, len(pairs))
	count := make(map[string]int, len(pairs))
	for i, p := range pairs {
		names[i] = specName(p[0], p[1])
		if !first[p] {
			first[p] = true
			ok[i] = true
			count[names[i]]++
		}
	}
	taken := make(map[string]bool, len(pairs))
	for i, p := range pairs {
		if !ok[i] {
			continue
		}
		if count[names[i]] > 1 {
			names[i] = hashedName(p[0], p[1])
		}
		ok[i] = !taken[names[i]]
		taken[names[i]] = true
	}
	return names, ok
}
