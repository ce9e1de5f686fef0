package llm

import (
	"slices"
	"strings"
)

// The input kinds ModelInfo.Accepts knows.
const (
	InputImage = "image" // images: png, jpeg, gif, webp
	InputFile  = "file"  // documents: PDF
)

// Accepts reports whether the catalog says the model takes input of kind
// InputImage ("image"; "vision" is a synonym) or InputFile ("file"; "pdf"
// and "document" are synonyms). known is false when the catalog is silent
// about it (then send anyway: a model that cannot read the input answers
// with an error of kind KindAttachment).
//
// The record's input modalities, when it lists them, decide both ways.
// Otherwise its feature tags say yes: "vision", "image", "image_input",
// "multimodal", ... for images; "file", "pdf", "document", "file_input", ...
// for files. Tags about output ("image_generation", "text_to_image") or
// tools ("file_search") do not count. They say no only explicitly:
// "text_only" to both kinds. A bare "text" tag says nothing (catalogs put it
// on vision models too).
func (m ModelInfo) Accepts(kind string) (accepts, known bool) {
	kind = normKind(kind)
	if kind == "" {
		return false, false
	}
	words := imageWords
	if kind == InputFile {
		words = fileWords
	}
	if len(m.InputModalities) > 0 {
		for _, mod := range m.InputModalities {
			for _, t := range tagTokens(mod) {
				if slices.Contains(words, t) {
					return true, true
				}
			}
		}
		return false, true
	}
	textOnly := false
	for _, f := range m.Features {
		toks := tagTokens(f)
		if slices.Contains(toks, "text") && slices.Contains(toks, "only") {
			textOnly = true
			continue
		}
		if tagSaysInput(toks, words) {
			return true, true
		}
	}
	// A bare "text" tag is not read as "text only": catalogs tag vision
	// models with it too, and a silent catalog means "send it".
	return false, textOnly
}

// Accepts reports what the catalog says about model taking input of kind
// (see ModelInfo.Accepts); known is false for a model it does not list.
func (c *Catalog) Accepts(model, kind string) (accepts, known bool) {
	m, ok := c.Lookup(model)
	if !ok {
		return false, false
	}
	return m.Accepts(kind)
}

var (
	imageWords = []string{"image", "images", "img", "vision", "visual", "multimodal", "picture", "pictures", "photo", "photos"}
	fileWords  = []string{"file", "files", "pdf", "pdfs", "document", "documents", "doc", "docs", "attachment", "attachments"}
	// outputWords mark a tag about what the model makes, not what it reads.
	outputWords = []string{"generation", "generate", "generator", "gen", "output", "out", "edit", "editing", "draw", "drawing", "create", "creation", "t2i"}
	// toolWords mark a tag about a tool rather than an input.
	toolWords = []string{"search", "retrieval"}
)

// normKind returns InputImage or InputFile for kind or a synonym, else "".
func normKind(kind string) string {
	switch strings.ToLower(strings.TrimSpace(kind)) {
	case "image", "images", "vision":
		return InputImage
	case "file", "files", "pdf", "document", "documents":
		return InputFile
	}
	return ""
}

// tagTokens splits a tag into lower-case words: "Image-Input" → [image
// input], "multi_modal" → [multi modal multimodal].
func tagTokens(tag string) []string {
	toks := strings.FieldsFunc(strings.ToLower(tag), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	for i := 0; i+1 < len(toks); i++ {
		if toks[i] == "multi" && toks[i+1] == "modal" {
			toks = append(toks, "multimodal")
		}
	}
	return toks
}

// tagSaysInput reports whether a tag's tokens say the model reads one of
// words. In "x_to_y" only x is input.
func tagSaysInput(toks, words []string) bool {
	if i := slices.Index(toks, "to"); i >= 0 {
		toks = toks[:i]
	}
	hit := false
	for _, t := range toks {
		if slices.Contains(outputWords, t) || slices.Contains(toolWords, t) {
			return false
		}
		hit = hit || slices.Contains(words, t)
	}
	return hit
}

// capabilityWords returns the search words for what the model reads, so
// that "/model list vision" or "pdf" finds the models that take them.
func capabilityWords(m ModelInfo) string {
	var b strings.Builder
	for _, f := range m.Features {
		b.WriteString(strings.ToLower(f))
		b.WriteByte(' ')
	}
	if ok, _ := m.Accepts(InputImage); ok {
		b.WriteString("vision image ")
	}
	if ok, _ := m.Accepts(InputFile); ok {
		b.WriteString("file pdf document ")
	}
	return strings.TrimSpace(b.String())
}
