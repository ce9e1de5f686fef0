package discord

import (
	"net/url"
	"strconv"

	"github.com/bwmarrin/discordgo"
)

// Permissions is what the bot asks for when invited: see channels, send
// messages (also in threads), open public threads, read history (for
// replies), embed links and attach files.
const Permissions int64 = discordgo.PermissionViewChannel |
	discordgo.PermissionSendMessages |
	discordgo.PermissionSendMessagesInThreads |
	discordgo.PermissionCreatePublicThreads |
	discordgo.PermissionReadMessageHistory |
	discordgo.PermissionEmbedLinks |
	discordgo.PermissionAttachFiles

// InviteURL returns the OAuth2 URL that adds the application's bot to a
// server with Permissions and the bot + applications.commands scopes.
func InviteURL(applicationID string) string {
	q := url.Values{}
	q.Set("client_id", applicationID)
	q.Set("permissions", strconv.FormatInt(Permissions, 10))
	q.Set("scope", "bot applications.commands")
	return "https://discord.com/oauth2/authorize?" + q.Encode()
}
