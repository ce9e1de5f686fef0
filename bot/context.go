package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// storedBlobs is the background write of a turn's attachment bytes.
type storedBlobs struct {
	done chan struct{}
	refs []storage.AttachmentRef
}

// wait returns the attachment references to keep with the user record.
func (s *storedBlobs) wait() []storage.AttachmentRef {
	if s == nil {
		return nil
	}
	<-s.done
	return s.refs
}

// storeBlobs keeps the files' bytes in the blob store, concurrently with the
// model call (no fsync in front of the request). Files whose bytes could not
// be stored are still referenced by name.
func (e *Engine) storeBlobs(ctx context.Context, conv string, files []*readFile) *storedBlobs {
	s := &storedBlobs{done: make(chan struct{})}
	if len(files) == 0 {
		close(s.done)
		return s
	}
	s.refs = make([]storage.AttachmentRef, len(files))
	for i, f := range files {
		s.refs[i] = storage.AttachmentRef{Name: f.name, MIMEType: f.mime, Size: int64(len(f.data))}
	}
	if e.opts.Blobs == nil {
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		ctx := context.WithoutCancel(ctx)
		for i, f := range files {
			ref, err := e.opts.Blobs.PutBlob(ctx, conv, f.data)
			if err != nil {
				e.log.Error("store attachment", "file", f.name, "err", err)
				continue
			}
			s.refs[i].Ref = ref
		}
	}()
	return s
}

// buildRequestMessages turns stored history plus the new message (with its
// read files) into model messages within the context budget. Turns that
// failed or were cancelled are left out whole, so the model sees only
// complete exchanges. Stored attachments come back newest first while the
// per-request attachment bytes allow; older ones are named, not sent.
func (e *Engine) buildRequestMessages(ctx context.Context, log *slog.Logger, conv, system string, hist []storage.Record, m Message, files []*readFile) []llm.Message {
	msgs := make([]llm.Message, 0, len(hist)+1)
	refs := make([][]storage.AttachmentRef, 0, len(hist)+1)
	for _, r := range hist {
		if r.Status != "" && r.Status != storage.StatusOK {
			continue
		}
		role := llm.RoleUser
		if r.Role == "assistant" {
			role = llm.RoleAssistant
		}
		if role == llm.RoleAssistant && len(r.Steps) > 0 {
			for _, tm := range toolMessages(r.Steps) {
				msgs = append(msgs, tm)
				refs = append(refs, nil)
			}
		}
		msgs = append(msgs, llm.Message{Role: role, Content: r.Text})
		var rs []storage.AttachmentRef
		if role == llm.RoleUser {
			rs = r.Attachments
		}
		refs = append(refs, rs)
	}

	// The new turn: text, forwards and text files inline; images and PDFs as parts.
	cur := llm.Message{Role: llm.RoleUser}
	budgetBytes := e.opts.Attachments.ContextBytes
	var texts []*readFile
	for _, f := range files {
		switch f.kind {
		case kindImage:
			cur.Images = append(cur.Images, llm.Image{MIMEType: f.mime, Data: f.data})
			budgetBytes -= int64(len(f.data))
		case kindPDF:
			cur.Files = append(cur.Files, llm.File{Name: f.name, MIMEType: f.mime, Data: f.data})
			budgetBytes -= int64(len(f.data))
		case kindText:
			texts = append(texts, f)
		}
	}
	fixed := EstimateTokens(system) + EstimateTokens(m.Text) + EstimateTokens(forwardText(m.Forwards)) + partTokens(cur)
	inline := make([]inlineText, 0, len(texts))
	if len(texts) > 0 {
		// Text files share what the budget leaves, at 4 characters a token.
		room := max(1000, (e.opts.ContextTokens-fixed)*4/len(texts))
		for _, f := range texts {
			inline = append(inline, clipText(f.name, f.data, room))
		}
	}
	cur.Content = userContent(m.Text, m.Forwards, inline)
	msgs = append(msgs, cur)
	refs = append(refs, nil)

	start := trimStart(system, msgs, e.opts.ContextTokens, func(i int) int {
		n := 0
		for _, a := range refs[i] {
			if k := kindOf(a.MIMEType); k == kindImage || k == kindPDF {
				n += attachmentTokens(k, a.Size)
			}
		}
		return n
	})
	msgs, refs = msgs[start:], refs[start:]

	// Stored attachments, newest first, while the byte budget lasts.
	for i := len(msgs) - 2; i >= 0; i-- {
		if len(refs[i]) == 0 {
			continue
		}
		var extra []string
		for _, a := range refs[i] {
			kind := kindOf(a.MIMEType)
			var data []byte
			if a.Ref != "" && e.opts.Blobs != nil && (kind == kindText || a.Size <= budgetBytes) {
				b, err := e.opts.Blobs.Blob(ctx, a.Ref)
				switch {
				case err == nil:
					data = b
				case !errors.Is(err, storage.ErrBlobNotFound):
					log.Warn("load attachment", "file", a.Name, "err", err)
				}
			}
			switch {
			case data == nil:
				extra = append(extra, placeholder(a))
			case kind == kindImage:
				msgs[i].Images = append(msgs[i].Images, llm.Image{MIMEType: a.MIMEType, Data: data})
				budgetBytes -= int64(len(data))
			case kind == kindPDF:
				msgs[i].Files = append(msgs[i].Files, llm.File{Name: a.Name, MIMEType: a.MIMEType, Data: data})
				budgetBytes -= int64(len(data))
			default:
				extra = append(extra, clipText(a.Name, data, 16_000).render())
			}
		}
		if len(extra) > 0 {
			msgs[i].Content = strings.TrimSpace(msgs[i].Content + "\n\n" + strings.Join(extra, "\n\n"))
		}
	}
	return msgs
}

// partTokens estimates the images and files of a message.
func partTokens(m llm.Message) int {
	n := len(m.Images) * imageTokens
	for _, f := range m.Files {
		n += attachmentTokens(kindPDF, int64(len(f.Data)))
	}
	return n
}

// generated is what became of the images a model generated.
type generated struct {
	files []File                  // to upload after the final text
	refs  []storage.AttachmentRef // kept with the assistant record
	note  string                  // a line for the reply when they cannot be shown
}

// generatedImages prepares the model's images for the reply: uploaded where
// the platform can post files, within the per-file limit, and kept in the
// store with the assistant's record.
func (e *Engine) generatedImages(ctx context.Context, log *slog.Logger, conv string, imgs []llm.Image, reply Reply) generated {
	var g generated
	if len(imgs) == 0 {
		return g
	}
	_, canUpload := reply.(FileUploader)
	skipped := 0
	for i, im := range imgs {
		if int64(len(im.Data)) > e.opts.Attachments.MaxBytes || len(im.Data) == 0 {
			skipped++
			continue
		}
		mt := im.MIMEType
		if !fetch.IsImage(mt) {
			mt = fetch.Sniff(im.Data, "", mt)
		}
		name := fmt.Sprintf("image-%d%s", i+1, imageExt(mt))
		ref := storage.AttachmentRef{Name: name, MIMEType: mt, Size: int64(len(im.Data))}
		if e.opts.Blobs != nil {
			if r, err := e.opts.Blobs.PutBlob(context.WithoutCancel(ctx), conv, im.Data); err == nil {
				ref.Ref = r
			} else {
				log.Error("store generated image", "err", err)
			}
		}
		g.refs = append(g.refs, ref)
		if canUpload {
			g.files = append(g.files, File{Name: name, MIMEType: mt, Data: im.Data})
		}
	}
	switch {
	case !canUpload && len(g.refs) > 0:
		g.note = fmt.Sprintf("🖼️ The model made %s, which can't be shown here.", plural(len(g.refs), "image"))
	case skipped > 0:
		g.note = fmt.Sprintf("🖼️ Left out %s over the %s limit.", plural(skipped, "generated image"), byteSize(e.opts.Attachments.MaxBytes))
	}
	return g
}

func imageExt(mt string) string {
	switch mt {
	case "image/jpeg":
		return ".jpg"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	}
	return ".png"
}
