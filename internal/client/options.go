package client

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// CallOption adjusts one call.
type CallOption func(*callOptions)

type callOptions struct {
	key            string
	attemptTimeout time.Duration
	maxAttempts    int
	status         *int
	longPoll       time.Duration
	body           []byte
	contentType    string
}

// WithBody sends body as is with the content type, instead of the JSON
// encoding of the call's in argument (a template in YAML, say).
func WithBody(contentType string, body []byte) CallOption {
	return func(o *callOptions) { o.contentType, o.body = contentType, body }
}

// WithIdempotencyKey sends key as the call's Idempotency-Key instead of a
// fresh random one. Use it when a logical operation spans several calls (a
// result re-sent after the client gave up once): the server answers every
// repeat with its first answer. An empty key keeps the default.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.key = key }
}

// WithAttemptTimeout bounds each attempt of the call by d instead of
// Config.AttemptTimeout.
func WithAttemptTimeout(d time.Duration) CallOption {
	return func(o *callOptions) { o.attemptTimeout = d }
}

// WithLongPoll marks the call as a long poll whose server may hold the
// answer for up to wait (capped at MaxLongPoll): each attempt may take
// wait plus LongPollSlack, and the call's deadline is extended by wait so
// the retry budget stays Config.Deadline however long the poll.
func WithLongPoll(wait time.Duration) CallOption {
	return func(o *callOptions) {
		o.longPoll = min(max(wait, 0), MaxLongPoll)
		o.attemptTimeout = o.longPoll + LongPollSlack
	}
}

// WithMaxAttempts stops retrying after n attempts (n <= 0: no limit but the
// deadline). WithMaxAttempts(1) makes one attempt only.
func WithMaxAttempts(n int) CallOption {
	return func(o *callOptions) { o.maxAttempts = n }
}

// WithStatus stores the HTTP status of the answer that ended the call in
// *p (0 when no answer came), e.g. to tell 201 Created from 200 for an
// idempotent submit.
func WithStatus(p *int) CallOption {
	return func(o *callOptions) { o.status = p }
}

// NewIdempotencyKey returns a fresh random key: 128 bits from crypto/rand,
// hex-encoded.
func NewIdempotencyKey() string {
	var b [16]byte
	// crypto/rand.Read never fails (Go 1.24+): it crashes the program
	// rather than return predictable bytes.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
