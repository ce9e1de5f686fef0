package bot

import (
	"context"
	"errors"
)

// Output is implemented by adapters: it is where the engine's reply to one
// incoming message goes. The engine decides what to say; the adapter decides
// how often it may edit, how to split and how to pace within platform limits.
type Output interface {
	// Start shows progress at once (typing indicator, status or placeholder)
	// and returns the reply being built. It must not wait for a rate-limit
	// slot for longer than necessary.
	Start(ctx context.Context) (Reply, error)
}

// Reply is one streamed answer in progress.
//
// The engine calls Append any number of times, then exactly one of Finish or
// Fail. Append must return quickly: adapters coalesce deltas and pace their
// edits in the background. Finish and Fail block until the final text is
// delivered (or ctx ends).
type Reply interface {
	// Append adds streamed text to the reply.
	Append(ctx context.Context, delta string) error
	// Finish delivers the complete final text, splitting it into several
	// messages if the platform requires; nothing may be cut off.
	Finish(ctx context.Context, final string) error
	// Fail ends the reply with a short user-facing message (text already
	// shown may stay; the message explains what went wrong).
	Fail(ctx context.Context, userMessage string) error
}

// File is a file the bot posts into the conversation, e.g. an image the
// model generated.
type File struct {
	Name     string
	MIMEType string
	Data     []byte
}

// ErrFileTooLarge is wrapped by an Upload error for a file over the
// platform's upload limit.
var ErrFileTooLarge = errors.New("the file is larger than the platform accepts")

// FileUploader is implemented by replies that can post files into the
// conversation (in the reply's thread). The engine calls Upload after
// Finish; a Reply without it gets a one-line note instead of the file.
type FileUploader interface {
	Upload(ctx context.Context, files []File) error
}
