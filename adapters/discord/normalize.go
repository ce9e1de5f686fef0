package discord

import (
	"strings"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
)

// resolver names the things a message mentions.
type resolver struct {
	botID    string
	botRoles map[string]bool // the bot's managed role ids (count as a mention of the bot)
	users    map[string]string
	channel  func(id string) (string, bool)
	role     func(id string) (string, bool)
}

// userName is how a person is shown to the model: server nickname, else
// display name, else user name.
func userName(u *discordgo.User, m *discordgo.Member) string {
	if m != nil && m.Nick != "" {
		return m.Nick
	}
	if u == nil {
		return ""
	}
	if u.GlobalName != "" {
		return u.GlobalName
	}
	return u.Username
}

// resolveText replaces mentions with readable names and removes the bot's own
// mention. It reports whether the bot (or its managed role) was mentioned in
// the text.
func (r resolver) resolveText(s string) (string, bool) {
	if !strings.Contains(s, "<") {
		return strings.TrimSpace(s), false
	}
	self := false
	var b strings.Builder
	b.Grow(len(s))
	rest := s
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		kind, id, n := parseMention(rest[i:])
		if n == 0 {
			b.WriteByte('<')
			rest = rest[i+1:]
			continue
		}
		rest = rest[i+n:]
		switch kind {
		case "@", "@!":
			if id == r.botID {
				self = true
				b.WriteByte(0)
			} else if name, ok := r.users[id]; ok && name != "" {
				b.WriteString("@" + name)
			} else {
				b.WriteString("@user")
			}
		case "#":
			if name, ok := r.lookup(r.channel, id); ok {
				b.WriteString("#" + name)
			} else {
				b.WriteString("#channel")
			}
		default: // "@&"
			if r.botRoles[id] {
				self = true
				b.WriteByte(0)
			} else if name, ok := r.lookup(r.role, id); ok {
				b.WriteString("@" + name)
			} else {
				b.WriteString("@role")
			}
		}
	}
	return dropSelf(b.String()), self
}

func (r resolver) lookup(f func(string) (string, bool), id string) (string, bool) {
	if f == nil {
		return "", false
	}
	name, ok := f(id)
	return name, ok && name != ""
}

// parseMention parses a mention at the start of s: <@id>, <@!id>, <#id> or
// <@&id>. n is its length in bytes, 0 when s does not start with one.
func parseMention(s string) (kind, id string, n int) {
	if len(s) < 4 || s[0] != '<' {
		return "", "", 0
	}
	switch {
	case strings.HasPrefix(s, "<@!"), strings.HasPrefix(s, "<@&"):
		kind = s[1:3]
	case s[1] == '@', s[1] == '#':
		kind = s[1:2]
	default:
		return "", "", 0
	}
	start := 1 + len(kind)
	end := start
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == start || end >= len(s) || s[end] != '>' {
		return "", "", 0
	}
	return kind, s[start:end], end + 1
}

// dropSelf removes the placeholders left where the bot was mentioned, with
// one adjacent space, so "hey <@bot> there" reads "hey there" while the rest
// of the text (code indentation included) stays as written.
func dropSelf(s string) string {
	if strings.Contains(s, "\x00") {
		s = strings.ReplaceAll(s, " \x00 ", " ")
		s = strings.ReplaceAll(s, "\x00 ", "")
		s = strings.ReplaceAll(s, " \x00", "")
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return strings.TrimSpace(s)
}

// threadName makes a thread title from the user's text: the first line,
// at most 90 characters, or a fallback.
func threadName(text, fallback string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	line = strings.Join(strings.Fields(line), " ")
	if line == "" {
		return fallback
	}
	if utf8.RuneCountInString(line) > 90 {
		r := []rune(line)
		line = strings.TrimSpace(string(r[:89])) + "…"
	}
	return line
}
