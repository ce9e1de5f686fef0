package discord

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
)

// mentionRE matches user (<@id>, <@!id>), channel (<#id>) and role (<@&id>) mentions.
var mentionRE = regexp.MustCompile(`<(@!?|#|@&)(\d+)>`)

// resolver names the things a message mentions.
type resolver struct {
	botID      string
	botRoles   map[string]bool // the bot's managed role ids (count as a mention of the bot)
	users      map[string]string
	channel    func(id string) (string, bool)
	role       func(id string) (string, bool)
	unknownTag string
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
	out := mentionRE.ReplaceAllStringFunc(s, func(tok string) string {
		sub := mentionRE.FindStringSubmatch(tok)
		kind, id := sub[1], sub[2]
		switch kind {
		case "@", "@!":
			if id == r.botID {
				self = true
				return "\x00"
			}
			if n, ok := r.users[id]; ok && n != "" {
				return "@" + n
			}
			return "@user"
		case "#":
			if r.channel != nil {
				if n, ok := r.channel(id); ok && n != "" {
					return "#" + n
				}
			}
			return "#channel"
		default: // "@&"
			if r.botRoles[id] {
				self = true
				return "\x00"
			}
			if r.role != nil {
				if n, ok := r.role(id); ok && n != "" {
					return "@" + n
				}
			}
			return "@role"
		}
	})
	return dropSelf(out), self
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
