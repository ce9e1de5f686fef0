package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/fetch"
)

// Files and shared messages, both ways: files[] and shared-message
// attachments[] of incoming events become bot.Attachment and bot.Forward
// values (the engine decides what to read and what to tell the user about
// skipped files); files the engine posts go up through Slack's external
// upload flow into the reply's thread.

// Fixes the engine shows when Slack refuses files for want of a scope.
const (
	fixFilesRead  = "add the files:read scope to the Slack app and reinstall it"
	fixFilesWrite = "add the files:write scope to the Slack app and reinstall it"
)

// fixError is an error with a fix the user (or the operator) can apply;
// the engine looks for the Fix method. It wraps the underlying error
// (a *fetch.Error for downloads).
type fixError struct {
	err error
	fix string
}

func (e *fixError) Error() string { return e.err.Error() }
func (e *fixError) Unwrap() error { return e.err }

// Fix says how to make the failed operation work.
func (e *fixError) Fix() string { return e.fix }

// withDownloadFix wraps a download error that means "the token lacks
// files:read" (Slack's login page instead of the file) with that fix.
func withDownloadFix(err error) error {
	var fe *fetch.Error
	if errors.As(err, &fe) && fe.Kind == fetch.KindLoginPage {
		return &fixError{err: err, fix: fixFilesRead}
	}
	return err
}

// withUploadFix wraps a missing_scope refusal of the upload methods.
func withUploadFix(err error) error {
	if slackCode(err) == "missing_scope" {
		return &fixError{err: err, fix: fixFilesWrite}
	}
	return err
}

// newFetcher is the fetcher used when Config.Fetcher is nil: the platforms'
// file hosts plus the host of the Web API URL (where a fake serves files).
func newFetcher(apiURL string) *fetch.Fetcher {
	hosts := append([]string(nil), fetch.DefaultHosts...)
	if h := fetch.HostOf(apiURL); h != "" {
		hosts = append(hosts, h)
	}
	return fetch.New(fetch.Config{AllowHosts: hosts})
}

// eventContent is what a message-like event carries besides its text. It
// is decoded from the raw event for app_mention and message events alike
// (slack-go's Attachment has no message_blocks).
type eventContent struct {
	Files       []slack.File
	Attachments []eventAttachment
}

// eventAttachment is the part of a legacy message attachment that matters
// for shared messages.
type eventAttachment struct {
	IsShare       bool         `json:"is_share"`
	IsMsgUnfurl   bool         `json:"is_msg_unfurl"`
	AuthorID      string       `json:"author_id"`
	AuthorName    string       `json:"author_name"`
	AuthorSubname string       `json:"author_subname"`
	Text          string       `json:"text"`
	Fallback      string       `json:"fallback"`
	Pretext       string       `json:"pretext"`
	Files         []slack.File `json:"files"`
	MessageBlocks []struct {
		Message struct {
			Blocks []richElement `json:"blocks"`
		} `json:"message"`
	} `json:"message_blocks"`
}

// decodeContent reads files[] and attachments[] from a raw inner event.
// It is tolerant: an attachment that does not decode is skipped, never the
// message.
func decodeContent(raw []byte) eventContent {
	var c eventContent
	if !bytes.Contains(raw, []byte(`"files"`)) && !bytes.Contains(raw, []byte(`"attachments"`)) {
		return c
	}
	var top struct {
		Files       []slack.File      `json:"files"`
		Attachments []json.RawMessage `json:"attachments"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		// Decode the two parts separately: one bad part keeps the other.
		var f struct {
			Files []slack.File `json:"files"`
		}
		var a struct {
			Attachments []json.RawMessage `json:"attachments"`
		}
		_ = json.Unmarshal(raw, &f)
		_ = json.Unmarshal(raw, &a)
		top.Files, top.Attachments = f.Files, a.Attachments
	}
	c.Files = top.Files
	for _, r := range top.Attachments {
		var a eventAttachment
		if json.Unmarshal(r, &a) == nil {
			c.Attachments = append(c.Attachments, a)
		}
	}
	return c
}

// sharedMessage is a shared message before names are resolved.
type sharedMessage struct {
	authorID string
	author   string // from the attachment; "" when only authorID is known
	text     string // Slack markup, for resolveText
	files    []slack.File
}

// sharedMessages picks the shared (forwarded) messages out of a message's
// attachments: those marked is_share or is_msg_unfurl that have text or
// files. The text is the attachment's text, else the original message's
// rich_text blocks, else its fallback or pretext.
func sharedMessages(atts []eventAttachment) []sharedMessage {
	var out []sharedMessage
	for _, a := range atts {
		if !a.IsShare && !a.IsMsgUnfurl {
			continue // link previews, bot attachments
		}
		s := sharedMessage{authorID: a.AuthorID, author: firstNonBlank(a.AuthorName, a.AuthorSubname), files: a.Files}
		var blocks strings.Builder
		for _, mb := range a.MessageBlocks {
			for _, b := range mb.Message.Blocks {
				if t := richText(b); t != "" {
					if blocks.Len() > 0 {
						blocks.WriteByte('\n')
					}
					blocks.WriteString(t)
				}
			}
		}
		s.text = firstNonBlank(a.Text, blocks.String(), a.Fallback, a.Pretext)
		if s.text == "" && len(s.files) == 0 {
			continue // nothing to quote
		}
		out = append(out, s)
	}
	return out
}

func firstNonBlank(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// richElement is a node of a rich_text block.
type richElement struct {
	Type        string          `json:"type"`
	Text        string          `json:"text"`
	URL         string          `json:"url"`
	UserID      string          `json:"user_id"`
	ChannelID   string          `json:"channel_id"`
	UsergroupID string          `json:"usergroup_id"`
	Range       string          `json:"range"`
	Name        string          `json:"name"`
	Fallback    string          `json:"fallback"`
	Style       json.RawMessage `json:"style"` // "bullet"/"ordered" on lists, an object on text
	Indent      int             `json:"indent"`
	Elements    []richElement   `json:"elements"`
}

// richText renders a rich_text block as Slack message markup (mentions as
// <@U…>, links as <url|label>, &, < and > escaped), so that it goes
// through the same resolveText as any message text. Other blocks render
// as "".
func richText(b richElement) string {
	if b.Type != "rich_text" {
		return ""
	}
	var lines []string
	for _, el := range b.Elements {
		switch el.Type {
		case "rich_text_section":
			lines = append(lines, richInline(el.Elements))
		case "rich_text_quote":
			for _, l := range strings.Split(richInline(el.Elements), "\n") {
				lines = append(lines, "&gt; "+l)
			}
		case "rich_text_preformatted":
			lines = append(lines, "```\n"+richInline(el.Elements)+"\n```")
		case "rich_text_list":
			var style string
			_ = json.Unmarshal(el.Style, &style)
			indent := strings.Repeat("  ", max(el.Indent, 0))
			for i, item := range el.Elements {
				marker := "- "
				if style == "ordered" {
					marker = fmt.Sprintf("%d. ", i+1)
				}
				lines = append(lines, indent+marker+richInline(item.Elements))
			}
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

var markupEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// richInline renders the inline elements of a section.
func richInline(els []richElement) string {
	var b strings.Builder
	for _, el := range els {
		switch el.Type {
		case "text":
			b.WriteString(markupEscaper.Replace(el.Text))
		case "link":
			if el.Text != "" && el.Text != el.URL {
				b.WriteString("<" + el.URL + "|" + markupEscaper.Replace(el.Text) + ">")
			} else {
				b.WriteString("<" + el.URL + ">")
			}
		case "user":
			b.WriteString("<@" + el.UserID + ">")
		case "channel":
			b.WriteString("<#" + el.ChannelID + ">")
		case "usergroup":
			b.WriteString("<!subteam^" + el.UsergroupID + ">")
		case "broadcast":
			b.WriteString("<!" + el.Range + ">")
		case "emoji":
			b.WriteString(":" + el.Name + ":")
		default:
			b.WriteString(markupEscaper.Replace(firstNonBlank(el.Text, el.Fallback)))
		}
	}
	return b.String()
}

// fileURL is where a file's bytes can be downloaded with the bot token,
// or "" when it cannot be: deleted (tombstone), hidden by the free plan's
// limit, or external (a link to another service that Slack does not host).
func fileURL(f slack.File) string {
	switch {
	case f.Mode == "tombstone", f.Mode == "hidden_by_limit", f.Mode == "external", f.IsExternal:
		return ""
	case f.URLPrivateDownload != "":
		return f.URLPrivateDownload
	default:
		return f.URLPrivate
	}
}

// attachmentsOf describes files for the engine. fetcher returns the
// download function for a URL, or nil; files without one are reported by
// the engine as not downloadable.
func attachmentsOf(files []slack.File, fetcher func(url string) func(context.Context) ([]byte, error)) []bot.Attachment {
	var out []bot.Attachment
	for _, f := range files {
		a := bot.Attachment{Name: firstNonBlank(f.Name, f.Title, f.ID), MIMEType: f.Mimetype, Size: int64(f.Size)}
		if u := fileURL(f); u != "" {
			a.URL, a.Fetch = u, fetcher(u)
		}
		out = append(out, a)
	}
	return out
}

// mayReceiveToken reports whether the bot token may be sent to rawURL:
// https on a Slack domain, or the scheme and host of the Web API URL (a
// fake, or a proxy the operator chose). The fetcher's allow-list says
// where files may come from; this says where the token may go, which is
// narrower (the list also holds other platforms' hosts).
func mayReceiveToken(rawURL, apiURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.User != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if u.Scheme == "https" && (host == "slack.com" || strings.HasSuffix(host, ".slack.com") ||
		host == "slack-gov.com" || strings.HasSuffix(host, ".slack-gov.com")) {
		return true
	}
	api, err := url.Parse(apiURL)
	return err == nil && api.Host != "" && u.Scheme == api.Scheme && strings.EqualFold(u.Host, api.Host)
}

// download returns the function that fetches url with the bot token
// through the shared fetcher. A URL the token may not go to is never
// requested: its function fails at once as not allowed, so that the engine
// names the real reason (not a file host the bot downloads from).
func (a *Adapter) download(url string) func(context.Context) ([]byte, error) {
	if !mayReceiveToken(url, a.cfg.APIURL) {
		host := fetch.HostOf(url)
		a.log.Warn("slack: not sending the bot token to a file URL outside Slack", "host", host)
		return func(context.Context) ([]byte, error) {
			return nil, &fetch.Error{Kind: fetch.KindNotAllowed, Host: host}
		}
	}
	return func(ctx context.Context) ([]byte, error) {
		data, err := a.fetcher.Get(ctx, url, http.Header{"Authorization": {"Bearer " + a.cfg.BotToken}})
		if err != nil {
			return nil, withDownloadFix(err)
		}
		return data, nil
	}
}

// forwards turns shared messages into bot.Forward values: authors by name
// (users.info when the attachment names nobody), text resolved like any
// message text, files like any message's.
func (a *Adapter) forwards(ctx context.Context, shares []sharedMessage, botUserID string) []bot.Forward {
	var out []bot.Forward
	for _, s := range shares {
		author := s.author
		if author == "" && s.authorID != "" {
			author = a.users.get(ctx, a.api, s.authorID).name
		}
		out = append(out, bot.Forward{
			Author:      author,
			Text:        a.resolveText(ctx, s.text, botUserID),
			Attachments: attachmentsOf(s.files, a.download),
		})
	}
	return out
}

// ---- uploads ----

var _ bot.FileUploader = (*reply)(nil)

// Upload posts files into the reply's thread with Slack's external upload
// flow: files.getUploadURLExternal, the bytes to the upload URL, then
// files.completeUploadExternal with the channel and thread. It returns
// after every file was tried; errors name the files that failed and carry
// a Fix when the app lacks files:write.
func (r *reply) Upload(ctx context.Context, files []bot.File) error {
	var errs []error
	for _, f := range files {
		if err := r.upload(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("slack: upload %q: %w", f.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *reply) upload(ctx context.Context, f bot.File) error {
	if len(f.Data) == 0 {
		return errors.New("empty file")
	}
	name := firstNonBlank(f.Name, "file")
	api := r.o.a.api
	var u *slack.GetUploadURLExternalResponse
	err := r.call(ctx, ctx, r.p.files, prioHigh, func(c context.Context) error {
		var err error
		u, err = api.GetUploadURLExternalContext(c, slack.GetUploadURLExternalParameters{FileName: name, FileSize: len(f.Data)})
		return err
	})
	if err != nil {
		return withUploadFix(err)
	}
	// The bytes go to Slack's file servers, not the Web API: no budget.
	err = r.call(ctx, ctx, nil, prioHigh, func(c context.Context) error {
		return api.UploadToURL(c, slack.UploadToURLParameters{UploadURL: u.UploadURL, Reader: bytes.NewReader(f.Data), Filename: name})
	})
	if err != nil {
		return err
	}
	// Completing shares the file as a message: paced like the channel's
	// posts, and like them never repeated blindly (see createMessage).
	_, err = r.createMessage(ctx, ctx, r.p.post(r.o.channel), prioHigh, sharesFile(u.FileID), func(c context.Context) (string, error) {
		_, err := api.CompleteUploadExternalContext(c, slack.CompleteUploadExternalParameters{
			Files: []slack.FileSummary{{ID: u.FileID, Title: name}}, Channel: r.o.channel, ThreadTimestamp: r.o.thread,
		})
		return "", err
	})
	return withUploadFix(err)
}
