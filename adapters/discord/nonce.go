package discord

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// A message post whose answer is lost (a timeout, a reset connection, an
// undecodable 200, a 5xx) may or may not have created the message. Every
// post therefore carries a nonce with enforce_nonce: Discord then answers a
// repeated post with the same nonce (same author, same channel, within a few
// minutes) with the message already created instead of a second one, so a
// post can be retried safely. The nonce is unique per reply part and stable
// across the retries of that part, until the part's message exists.

// messageSend is discordgo's MessageSend with the nonce fields it lacks.
type messageSend struct {
	*discordgo.MessageSend
	Nonce        string `json:"nonce,omitempty"`
	EnforceNonce bool   `json:"enforce_nonce,omitempty"`
}

// replyIDFor returns the id of the nonces of the reply to the message
// source: the message's id, so that a process resuming the reply after a
// crash makes the same nonces as the one that died and a post the dead
// process made (whose id never reached the database) is returned instead of
// made twice. Without a source the id is random.
func replyIDFor(source string) string {
	if source != "" && len(source) <= 20 { // nonces hold 25 characters: id "." count
		return source
	}
	return strings.ToLower(rand.Text()[:12])
}

// nonceFor returns the nonce of reply part i: the one of an earlier attempt
// that did not confirm a message, else a new one (at most 25 characters).
func (r *reply) nonceFor(i int) string {
	if n, ok := r.nonces[i]; ok {
		return n
	}
	if r.nonces == nil {
		r.nonces = map[int]string{}
	}
	n := r.newNonce()
	r.nonces[i] = n
	return n
}

// newNonce returns a nonce no other message of the reply has.
func (r *reply) newNonce() string {
	r.posts++
	return r.id + "." + strconv.Itoa(r.posts)
}

// sendMessage posts data to a channel with nonce and enforce_nonce, as JSON
// or, with files, as multipart with payload_json.
func (a *Adapter) sendMessage(ctx context.Context, channelID string, data *discordgo.MessageSend, nonce string) (*discordgo.Message, error) {
	body := messageSend{MessageSend: data, Nonce: nonce, EnforceNonce: nonce != ""}
	endpoint := discordgo.EndpointChannelMessages(channelID)
	opts := []discordgo.RequestOption{discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false)}
	var resp []byte
	var err error
	if len(data.Files) > 0 {
		ct, b, merr := discordgo.MultipartBodyWithJSON(body, data.Files)
		if merr != nil {
			return nil, merr
		}
		resp, err = a.session.RequestRaw("POST", endpoint, ct, b, endpoint, 0, opts...)
	} else {
		resp, err = a.session.RequestWithBucketID("POST", endpoint, body, endpoint, opts...)
	}
	if err != nil {
		return nil, err
	}
	var m discordgo.Message
	if err := json.Unmarshal(resp, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", discordgo.ErrJSONUnmarshal, err)
	}
	if m.ID == "" {
		return nil, fmt.Errorf("%w: no message id in %.100q", discordgo.ErrJSONUnmarshal, resp)
	}
	return &m, nil
}
