package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/fetch"
)

// Files in both directions. The adapter only translates: it describes the
// files a message carries (its own attachments and those of forwarded
// messages) with a Fetch through the shared safe fetcher, and posts the
// files the engine hands to Upload. What to read, within which limits, and
// how to tell the user about skipped files is the engine's decision. URLs
// written in message text are never fetched, nor are embed images (which
// Discord derives from such URLs).
//
// discordgo v0.29 decodes message_snapshots and the FORWARD reference type
// itself (Message.MessageSnapshots, MessageReferenceTypeForward), so no raw
// payload needs to be captured.

const (
	// maxFilesPerMessage is Discord's cap on files in one message.
	maxFilesPerMessage = 10
	// authorLookupTimeout bounds the one GET that finds a forward's author.
	authorLookupTimeout = 3 * time.Second
	authorCacheSize     = 20000
)

// ErrFileTooLarge is wrapped by Upload's error for each file skipped
// because it alone exceeds Config.UploadLimit.
var ErrFileTooLarge = fmt.Errorf("larger than Discord's upload limit: %w", bot.ErrFileTooLarge)

// fetchHosts is the allow-list of the fetcher the adapter builds when none
// is configured: Discord's file hosts and the API's host:port.
func fetchHosts(apiURL string) []string {
	hosts := append([]string(nil), fetch.DefaultHosts...)
	if h := fetch.HostOf(apiURL); h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}

// getter is what attachments need from the fetcher.
type getter interface {
	Get(ctx context.Context, rawURL string, header http.Header) ([]byte, error)
}

// attachments describes a message's attachments for the engine.
func (a *Adapter) attachments(in []*discordgo.MessageAttachment) []bot.Attachment {
	var out []bot.Attachment
	for _, at := range in {
		if b, ok := attachmentOf(at, a.cfg.Fetcher); ok {
			out = append(out, b)
		}
	}
	return out
}

// attachmentOf describes one attachment; Fetch downloads it from its url,
// else its proxy_url, through g, without any authorization header. ok is
// false when Discord gave no link at all.
func attachmentOf(at *discordgo.MessageAttachment, g getter) (bot.Attachment, bool) {
	if at == nil {
		return bot.Attachment{}, false
	}
	urls := fetchURLs(at.URL, at.ProxyURL)
	if len(urls) == 0 {
		return bot.Attachment{}, false
	}
	return bot.Attachment{
		Name:     at.Filename,
		MIMEType: at.ContentType,
		URL:      withoutQuery(urls[0]),
		Size:     int64(max(at.Size, 0)),
		Fetch: func(ctx context.Context) ([]byte, error) {
			return fetchFirst(ctx, g, urls)
		},
	}, true
}

// fetchURLs lists where an attachment can be downloaded: url first, then
// proxy_url when it is another link.
func fetchURLs(u, proxy string) []string {
	u, proxy = strings.TrimSpace(u), strings.TrimSpace(proxy)
	var out []string
	if u != "" {
		out = append(out, u)
	}
	if proxy != "" && proxy != u {
		out = append(out, proxy)
	}
	return out
}

// fetchFirst downloads from the first URL that works. It moves on to the
// next only after failures another host may not have (not allowed, an HTTP
// status, the network); a file too large, a login page or a timeout would
// be the same there.
func fetchFirst(ctx context.Context, g getter, urls []string) ([]byte, error) {
	var err error
	for _, u := range urls {
		var b []byte
		if b, err = g.Get(ctx, u, nil); err == nil {
			return b, nil
		}
		if ctx.Err() != nil || !worthAnotherHost(err) {
			return nil, err
		}
	}
	return nil, err
}

func worthAnotherHost(err error) bool {
	var fe *fetch.Error
	if !errors.As(err, &fe) {
		return true
	}
	switch fe.Kind {
	case fetch.KindNotAllowed, fetch.KindStatus, fetch.KindNetwork:
		return true
	}
	return false
}

// withoutQuery drops the query of a link for logs: Discord's CDN links
// carry signatures (ex, is, hm).
func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// forwards returns the messages a forward carries (message_reference type
// FORWARD with message_snapshots), without their author: see
// fillForwardAuthors. Snapshots with neither text nor files are left out.
func (a *Adapter) forwards(m *discordgo.Message, id identity) []bot.Forward {
	if !isForward(m) {
		return nil
	}
	var out []bot.Forward
	for _, sn := range m.MessageSnapshots {
		sm := sn.Message
		if sm == nil {
			continue
		}
		f := bot.Forward{Text: a.snapshotText(sm, id), Attachments: a.attachments(sm.Attachments)}
		if f.Text != "" || len(f.Attachments) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// isForward reports whether m forwards other messages.
func isForward(m *discordgo.Message) bool {
	return m != nil && m.MessageReference != nil && m.MessageReference.Type == discordgo.MessageReferenceTypeForward &&
		len(m.MessageSnapshots) > 0
}

// snapshotText is a forwarded message's text for the model: its content
// with mentions named (a mention of the bot there is quoted, not an
// address: it stays "@name"), then the text of its rich embeds.
func (a *Adapter) snapshotText(sm *discordgo.Message, id identity) string {
	users := map[string]string{}
	if id.botID != "" {
		users[id.botID] = id.botName
	}
	for _, u := range sm.Mentions {
		if u != nil {
			users[u.ID] = userName(u, nil)
		}
	}
	res := a.resolver(users)
	text, _ := res.resolveText(sm.Content)
	if et := embedText(sm.Embeds); et != "" {
		if text != "" {
			text += "\n\n"
		}
		text += et
	}
	return text
}

// embedText is the text of rich embeds (those a bot or webhook composed):
// title, description and fields. Link previews (type link, image, video,
// article, gifv) only echo a URL already in the text and are left out;
// nothing an embed points at is fetched.
func embedText(embeds []*discordgo.MessageEmbed) string {
	var parts []string
	for _, e := range embeds {
		if e == nil || (e.Type != "" && e.Type != discordgo.EmbedTypeRich) {
			continue
		}
		var lines []string
		if t := strings.TrimSpace(e.Title); t != "" {
			lines = append(lines, t)
		}
		if d := strings.TrimSpace(e.Description); d != "" {
			lines = append(lines, d)
		}
		for _, f := range e.Fields {
			if f == nil {
				continue
			}
			n, v := strings.TrimSpace(f.Name), strings.TrimSpace(f.Value)
			switch {
			case n != "" && v != "":
				lines = append(lines, n+": "+v)
			case n+v != "":
				lines = append(lines, n+v)
			}
		}
		if len(lines) > 0 {
			parts = append(parts, strings.Join(lines, "\n"))
		}
	}
	return strings.Join(parts, "\n\n")
}

// fillForwardAuthors names the author of forwarded messages. Discord's
// snapshots carry no author, so the adapter uses, in order: a referenced
// message Discord included; the author of a message it saw itself (cache
// of recent messages, including lookups); or one GET of the original when
// it lies in a server the bot is in (other people's DMs are never
// readable). Failures leave the author empty and are remembered.
func (a *Adapter) fillForwardAuthors(ctx context.Context, m *discordgo.Message, fs []bot.Forward) {
	if len(fs) == 0 || !isForward(m) {
		return
	}
	name := a.forwardAuthor(ctx, m)
	for i := range fs {
		fs[i].Author = name
	}
}

// mayBeAnswered reports whether the engine may answer msg (a DM, an
// address, or a thread that may be the bot's), so that work only such a
// message needs, like looking up a forward's author, is not spent on
// chatter in channels.
func mayBeAnswered(msg bot.Message) bool {
	return msg.DM || msg.Mentioned || msg.ContinuesBot || msg.Thread != ""
}

func (a *Adapter) forwardAuthor(ctx context.Context, m *discordgo.Message) string {
	ref := m.MessageReference
	if rm := m.ReferencedMessage; rm != nil && rm.Author != nil {
		return userName(rm.Author, rm.Member)
	}
	if ref.MessageID == "" {
		return ""
	}
	if name, ok := a.authors.Get(ref.MessageID); ok {
		return name
	}
	a.mu.Lock()
	readable := ref.GuildID != "" && ref.ChannelID != "" && a.guilds[ref.GuildID]
	a.mu.Unlock()
	if !readable {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, authorLookupTimeout)
	defer cancel()
	orig, err := a.session.ChannelMessage(ref.ChannelID, ref.MessageID, discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
	name := ""
	if err != nil {
		a.log.Debug("forwarded message's author unknown", "channel", ref.ChannelID, "message", ref.MessageID, "err", err)
	} else if orig.Author != nil {
		name = userName(orig.Author, orig.Member)
	}
	a.authors.Put(ref.MessageID, name)
	return name
}

// Upload implements bot.FileUploader: after Finish (or Fail), or before
// them once the reply's first message exists (the engine then posts images
// before the final edit; see bot.Resumable), it posts the files into the
// reply's channel or thread as multipart messages
// (payload_json listing each files[n] in attachments[]), paced and retried
// like every other write. Files are grouped into as few messages as
// Config.UploadLimit and Discord's 10 files per message allow; a file over
// the limit by itself is skipped. The error names every file skipped
// (wrapping ErrFileTooLarge) or not posted; the others are posted.
func (r *reply) Upload(ctx context.Context, files []bot.File) error {
	if len(files) == 0 {
		return nil
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	switch {
	case closed:
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.prepare(ctx)
	case r.ref.Ref() == "":
		return errors.New("discord: Upload called before the reply had a message, Finish or Fail")
	default:
		// The worker posted the first message: where the reply goes is
		// settled (and was published with the reference).
	}
	limit := r.a.cfg.UploadLimit
	batches, skipped := packFiles(files, limit, maxFilesPerMessage)
	var errs []error
	for _, f := range skipped {
		errs = append(errs, fmt.Errorf("discord: %s (%d bytes) not posted: %w (%d bytes)", uploadName(f, 0), len(f.Data), ErrFileTooLarge, limit))
	}
	for _, b := range batches {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if err := r.postFiles(ctx, b); err != nil {
			errs = append(errs, fmt.Errorf("discord: posting %s: %w", batchNames(b), err))
		}
	}
	return errors.Join(errs...)
}

// uploadPayload is the payload_json of a message carrying files.
type uploadPayload struct {
	AllowedMentions *discordgo.MessageAllowedMentions `json:"allowed_mentions"`
	Attachments     []uploadAttachment                `json:"attachments"`
	Nonce           string                            `json:"nonce,omitempty"`
	EnforceNonce    bool                              `json:"enforce_nonce,omitempty"`
}

// uploadAttachment lists files[n] in attachments[] by its placeholder n.
type uploadAttachment struct {
	ID       int    `json:"id"`
	Filename string `json:"filename"`
}

// postFiles posts one message carrying files, with a nonce (see nonce.go)
// so that a retry after a lost answer creates no second message.
func (r *reply) postFiles(ctx context.Context, files []bot.File) error {
	payload := uploadPayload{AllowedMentions: noMentions(), Nonce: r.newNonce(), EnforceNonce: true}
	parts := make([]*discordgo.File, len(files))
	for i, f := range files {
		name := uploadName(f, i)
		payload.Attachments = append(payload.Attachments, uploadAttachment{ID: i, Filename: name})
		parts[i] = &discordgo.File{Name: name, ContentType: f.MIMEType, Reader: bytes.NewReader(f.Data)}
	}
	contentType, body, err := discordgo.MultipartBodyWithJSON(payload, parts)
	if err != nil {
		return err
	}
	endpoint := discordgo.EndpointChannelMessages(r.t.channel)
	var m discordgo.Message
	wait := func() error { return r.a.pacer.wait(ctx, r.t.channel) }
	err = r.write(ctx, wait, func() error {
		resp, err := r.a.session.RequestRaw(http.MethodPost, endpoint, contentType, body, endpoint, 0,
			discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(resp, &m); err != nil {
			return fmt.Errorf("%w: %w", discordgo.ErrJSONUnmarshal, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if r.t.conv != "" && m.ID != "" {
		r.a.convs.Put(m.ID, r.t.conv) // a reply to the image continues the conversation
	}
	return nil
}

// packFiles groups files, in order, into messages of at most perMessage
// files and limit bytes; files larger than limit by themselves are skipped.
func packFiles(files []bot.File, limit int64, perMessage int) (batches [][]bot.File, skipped []bot.File) {
	var cur []bot.File
	var size int64
	for _, f := range files {
		n := int64(len(f.Data))
		if n > limit {
			skipped = append(skipped, f)
			continue
		}
		if len(cur) > 0 && (len(cur) == perMessage || size+n > limit) {
			batches = append(batches, cur)
			cur, size = nil, 0
		}
		cur = append(cur, f)
		size += n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches, skipped
}

// imageExt names files that came without a name, by media type.
var imageExt = map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}

// uploadName is the file name to post: the given one without any
// directory, or "image-<i+1>" plus an extension from the media type.
// Discord shows images inline only when the name ends in their extension.
func uploadName(f bot.File, i int) string {
	name := strings.TrimSpace(f.Name)
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == "/" || name == ".." {
		name = ""
	}
	ext := imageExt[strings.ToLower(strings.TrimSpace(f.MIMEType))]
	if name == "" {
		base := "file"
		if ext != "" {
			base = "image"
		}
		return fmt.Sprintf("%s-%d%s", base, i+1, ext)
	}
	if ext != "" && path.Ext(name) == "" {
		name += ext
	}
	return name
}

func batchNames(files []bot.File) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = uploadName(f, i)
	}
	return strings.Join(names, ", ")
}
