package bot

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// BlobStore keeps attachment bytes, content-addressed, per conversation;
// *storage.Store implements it.
type BlobStore interface {
	PutBlob(ctx context.Context, conv string, data []byte) (string, error)
	Blob(ctx context.Context, ref string) ([]byte, error)
}

// AttachmentOptions bounds what the engine reads from attachments.
type AttachmentOptions struct {
	// MaxFiles is how many files of one message are read (default 10).
	MaxFiles int
	// MaxBytes is the per-file limit for local files (platform files are
	// bounded by the fetcher, with the same configured value; default 20 MiB).
	MaxBytes int64
	// ContextBytes bounds the attachment bytes (images and PDFs) sent in one
	// request, newest first; older ones are named but left out (default 20 MiB).
	ContextBytes int64
}

// Token estimates for attachments in the context budget. Providers count
// images by their pixels (OpenAI: 85 + 170 per 512 px tile at high detail,
// 765 for 1024×1024; Anthropic: width×height/750, about 1,600 at its 1.15
// megapixel cap); the engine does not decode images, so every image counts as
// imageTokens, near the upper end for typical screenshots. A PDF counts one
// token per pdfBytesPerToken bytes (about 2,500 tokens for a 100 KB page of
// text and figures), at least imageTokens.
const (
	imageTokens      = 1600
	pdfBytesPerToken = 40
)

// attachmentTokens estimates what one attachment costs in the context.
func attachmentTokens(kind string, size int64) int {
	if kind == kindPDF {
		return max(imageTokens, int(size/pdfBytesPerToken))
	}
	return imageTokens
}

// The kinds of attachment the engine gives the model.
const (
	kindImage = "image"
	kindPDF   = "file"
	kindText  = "text"
)

// kindOf classifies a sniffed media type: "image", "file" (PDF), "text" or "".
func kindOf(mt string) string {
	switch {
	case fetch.IsImage(mt):
		return kindImage
	case mt == "application/pdf":
		return kindPDF
	case fetch.IsText(mt) && mt != "text/html":
		return kindText
	}
	return ""
}

// readFile is one attachment of the current message after download.
type readFile struct {
	name string
	mime string
	kind string
	data []byte
	ref  string // set once stored
}

// attachmentResult is what reading a message's attachments produced.
type attachmentResult struct {
	files []*readFile
	notes []string // one short line per skipped or shortened file
}

// collectAttachments lists the message's attachments and its forwards' in order.
func collectAttachments(m Message) []Attachment {
	out := append([]Attachment(nil), m.Attachments...)
	for _, f := range m.Forwards {
		out = append(out, f.Attachments...)
	}
	return out
}

// readAttachments downloads (in parallel; the fetcher bounds concurrency) and
// classifies the message's files, and checks them against what the model
// can read. Skipped files get a note.
func (e *Engine) readAttachments(ctx context.Context, m Message, model string) attachmentResult {
	all := collectAttachments(m)
	var res attachmentResult
	if len(all) == 0 {
		return res
	}
	maxFiles := e.opts.Attachments.MaxFiles
	if len(all) > maxFiles {
		names := make([]string, 0, len(all)-maxFiles)
		for _, a := range all[maxFiles:] {
			names = append(names, a.Name)
		}
		res.notes = append(res.notes, fmt.Sprintf("📎 Skipped %s: I read at most %s per message.", nameList(names), plural(maxFiles, "file")))
		all = all[:maxFiles]
	}
	type outcome struct {
		f    *readFile
		note string
	}
	outs := make([]outcome, len(all))
	var wg sync.WaitGroup
	for i, a := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, note := e.readOne(ctx, a)
			outs[i] = outcome{f, note}
		}()
	}
	wg.Wait()
	var info llm.ModelInfo
	known := false
	if e.opts.Catalog != nil {
		info, known = e.opts.Catalog.Lookup(model)
	}
	for _, o := range outs {
		if o.note != "" {
			res.notes = append(res.notes, o.note)
			continue
		}
		if known && o.f.kind != kindText {
			if ok, said := info.Accepts(o.f.kind); said && !ok {
				res.notes = append(res.notes, cannotRead(o.f, model))
				continue
			}
		}
		res.files = append(res.files, o.f)
	}
	return res
}

// cannotRead is the note for a file the model has no input for.
func cannotRead(f *readFile, model string) string {
	if f.kind == kindImage {
		return fmt.Sprintf("📎 %s can't read images, so I left out %s. `/model list vision` shows models that can.", model, f.name)
	}
	return fmt.Sprintf("📎 %s can't read PDF files, so I left out %s. Pick a model that reads files with /model.", model, f.name)
}

// readOne downloads and classifies one attachment.
func (e *Engine) readOne(ctx context.Context, a Attachment) (*readFile, string) {
	name := a.Name
	if name == "" {
		name = "file"
	}
	limit := e.opts.Attachments.MaxBytes
	if a.Size > limit {
		return nil, fmt.Sprintf("📎 Skipped %s: it is %s, over the %s limit.", name, byteSize(a.Size), byteSize(limit))
	}
	data := a.Data
	switch {
	case data != nil:
		if int64(len(data)) > limit {
			return nil, fmt.Sprintf("📎 Skipped %s: it is %s, over the %s limit.", name, byteSize(int64(len(data))), byteSize(limit))
		}
	case a.Fetch == nil:
		return nil, fmt.Sprintf("📎 Skipped %s: the platform doesn't let bots download it.", name)
	default:
		var err error
		data, err = a.Fetch(ctx)
		if err != nil {
			e.log.Warn("attachment download failed", "file", name, "err", err)
			return nil, fetchNote(name, err, limit)
		}
	}
	mt := fetch.Sniff(data, name, a.MIMEType)
	if ext := strings.ToLower(path.Ext(name)); mt == "text/html" && (ext == ".html" || ext == ".htm") {
		mt = "text/plain" // an HTML file the user attached is read as source
	}
	kind := kindOf(mt)
	if kind == "" {
		return nil, fmt.Sprintf("📎 Skipped %s: I can read images, PDFs and text files, not %s.", name, describeType(mt, a.MIMEType))
	}
	return &readFile{name: name, mime: mt, kind: kind, data: data}, ""
}

// fetchNote explains a failed download in one line, with the fix when known.
func fetchNote(name string, err error, limit int64) string {
	var fixer interface{ Fix() string }
	fix := ""
	if errors.As(err, &fixer) {
		fix = " — " + fixer.Fix()
	}
	var fe *fetch.Error
	if !errors.As(err, &fe) {
		return fmt.Sprintf("📎 Skipped %s: the download failed%s.", name, fix)
	}
	switch fe.Kind {
	case fetch.KindTooLarge:
		if fe.Limit > 0 {
			limit = fe.Limit // the downloader's own limit is the one that applied
		}
		return fmt.Sprintf("📎 Skipped %s: it is over the %s limit.", name, byteSize(limit))
	case fetch.KindLoginPage:
		if fix == "" {
			fix = " — the bot lacks permission to read files"
		}
		return fmt.Sprintf("📎 Skipped %s: the platform sent a login page instead of the file%s.", name, fix)
	case fetch.KindNotAllowed:
		return fmt.Sprintf("📎 Skipped %s: it is not on a file host I download from.", name)
	case fetch.KindTimeout:
		return fmt.Sprintf("📎 Skipped %s: the download took too long.", name)
	case fetch.KindStatus:
		return fmt.Sprintf("📎 Skipped %s: the platform answered HTTP %d%s.", name, fe.Status, fix)
	}
	return fmt.Sprintf("📎 Skipped %s: the download failed%s.", name, fix)
}

func describeType(sniffed, declared string) string {
	if declared != "" && declared != "application/octet-stream" {
		return declared
	}
	if sniffed == "application/octet-stream" {
		return "binary files"
	}
	return sniffed
}

func nameList(names []string) string {
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

// byteSize renders a byte count: 512 B, 1.5 KiB, 20 MiB.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<10))) + " KiB"
	case n < 1<<30:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<20))) + " MiB"
	}
	return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<30))) + " GiB"
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// forwardText renders forwarded or shared messages as quoted content.
func forwardText(fs []Forward) string {
	var b strings.Builder
	for _, f := range fs {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		if f.Author != "" {
			fmt.Fprintf(&b, "[Forwarded message from %s]\n", f.Author)
		} else {
			b.WriteString("[Forwarded message]\n")
		}
		text := strings.TrimSpace(f.Text)
		if text == "" && len(f.Attachments) > 0 {
			text = "(files only)"
		}
		for line := range strings.SplitSeq(text, "\n") {
			b.WriteString("> ")
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// userContent is the text of a user turn: the message, its forwards, and the
// inlined text files (each within maxChars, cut with a visible note).
func userContent(text string, fwd []Forward, texts []inlineText) string {
	parts := make([]string, 0, 2+len(texts))
	if t := strings.TrimSpace(text); t != "" {
		parts = append(parts, t)
	}
	if len(fwd) > 0 {
		parts = append(parts, forwardText(fwd))
	}
	for _, t := range texts {
		parts = append(parts, t.render())
	}
	return strings.Join(parts, "\n\n")
}

// inlineText is a text file given to the model inside the user turn.
type inlineText struct {
	name  string
	text  string
	total int // characters in the whole file
}

func (t inlineText) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<file name=%q>\n%s", t.name, t.text)
	if shown := utf8.RuneCountInString(t.text); shown < t.total {
		fmt.Fprintf(&b, "\n[… cut to fit the context: the first %d of %d characters]", shown, t.total)
	}
	b.WriteString("\n</file>")
	return b.String()
}

// clipText returns the file's text cut to at most maxChars characters.
func clipText(name string, data []byte, maxChars int) inlineText {
	s := string(data)
	total := utf8.RuneCountInString(s)
	if total <= maxChars {
		return inlineText{name: name, text: s, total: total}
	}
	n := 0
	for i := range s {
		if n == maxChars {
			cut := s[:i]
			if j := strings.LastIndexByte(cut, '\n'); j > len(cut)/2 {
				cut = cut[:j]
			}
			return inlineText{name: name, text: cut, total: total}
		}
		n++
	}
	return inlineText{name: name, text: s, total: total}
}

// placeholder names an attachment that is no longer sent to the model.
func placeholder(a storage.AttachmentRef) string {
	kind := "file"
	if fetch.IsImage(a.MIMEType) {
		kind = "image"
	}
	return fmt.Sprintf("[%s: %s, no longer in context]", kind, a.Name)
}
