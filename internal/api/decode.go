package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/dpe-engine/dpe/internal/wire"
)

// itemCap caps the items of one array field of a body's top-level object
// (the jobs of a batch): the body is refused once the item past the cap is
// read, before anything of it is decoded.
type itemCap struct {
	field string
	max   int
}

// drainMax bounds what a refused body is read to its end, so the client,
// which is still sending, reads the 413 instead of a connection reset. A
// bigger body is answered at once and its connection closed.
const drainMax = 64 << 20

// errTooLarge is the error of a body past its limit.
var errTooLarge = errors.New("request body too large")

// decode reads a JSON body strictly into v: size-limited (413), the
// arrays named by caps capped while reading (422), duplicate keys (400
// naming the key's path), unknown fields (400) and more than one value
// (400) refused. A first streaming pass checks the body token by token as
// it arrives, so an oversized batch is refused before any of it is
// decoded; only a body that passes is decoded into v. Errors are problems
// ready to write.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any, caps ...itemCap) *wire.Problem {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/problem+json") {
			return &wire.Problem{Title: "unsupported media type", Status: http.StatusUnsupportedMediaType, Detail: fmt.Sprintf("Content-Type %q: send application/json", ct)}
		}
	}
	if r.ContentLength > limit {
		return tooLarge(w, r, limit)
	}
	var buf bytes.Buffer
	lr := &limitReader{r: r.Body, n: limit}
	if err := scanJSON(io.TeeReader(lr, &buf), caps); err != nil {
		if errors.Is(err, errTooLarge) {
			return tooLarge(w, r, limit)
		}
		// Read the rest (within the limit) for the client to read the
		// answer rather than a reset; nothing of it is kept.
		if _, derr := io.Copy(io.Discard, lr); errors.Is(derr, errTooLarge) {
			w.Header().Set("Connection", "close")
		}
		return decodeProblem(err, limit)
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err, limit)
	}
	return nil
}

// readBody reads a whole body of at most limit bytes (a template
// document, a body kept for its idempotency fingerprint); one over it is
// answered as decode answers it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *wire.Problem) {
	if r.ContentLength > limit {
		return nil, tooLarge(w, r, limit)
	}
	b, err := io.ReadAll(&limitReader{r: r.Body, n: limit})
	if errors.Is(err, errTooLarge) {
		return nil, tooLarge(w, r, limit)
	}
	if err != nil {
		return nil, decodeProblem(err, limit)
	}
	return b, nil
}

// tooLarge answers a body over limit. The rest of the body is read and
// dropped (up to drainMax) unless the client waits for 100 Continue, so
// the client gets to read the answer: the server closes the connection
// after it, and unread data would turn the close into a reset.
func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) *wire.Problem {
	if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		_, _ = io.CopyN(io.Discard, r.Body, drainMax)
	}
	w.Header().Set("Connection", "close")
	return &wire.Problem{Title: "request body too large", Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the limit is %d bytes", limit)}
}

// limitReader reads at most n bytes and fails with errTooLarge after
// them. Unlike http.MaxBytesReader it leaves the connection to tooLarge.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errTooLarge
	}
	return n, err
}

// capError is an array past its itemCap.
type capError struct {
	field string
	max   int
}

func (e *capError) Error() string {
	return fmt.Sprintf("%s: at most %d items per call", e.field, e.max)
}

// dupError is a key given twice in one object.
type dupError struct{ path string }

func (e *dupError) Error() string {
	return fmt.Sprintf("%s: duplicate key (each key may appear once per object)", e.path)
}

// pathOf names key in the innermost object of stack the way problem
// fields are named: jobs[2].params.x.
func pathOf(stack []*frame, key string) string {
	var b strings.Builder
	for i, f := range stack {
		last := i == len(stack)-1
		switch {
		case f.obj && last:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(key)
		case f.obj:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		default:
			b.WriteString("[" + strconv.Itoa(f.n-1) + "]")
		}
	}
	return b.String()
}

// decodeProblem maps an error of decode to its problem.
func decodeProblem(err error, limit int64) *wire.Problem {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ce *capError
	var de *dupError
	switch {
	case errors.As(err, &mbe), errors.Is(err, errTooLarge):
		return &wire.Problem{Title: "request body too large", Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the limit is %d bytes", limit)}
	case errors.As(err, &ce):
		return &wire.Problem{Title: "invalid input", Status: http.StatusUnprocessableEntity, Detail: ce.Error(), Field: ce.field}
	case errors.As(err, &de):
		return &wire.Problem{Title: "malformed JSON", Status: http.StatusBadRequest, Detail: de.Error(), Field: de.path}
	case errors.Is(err, errMoreValues):
		return &wire.Problem{Title: "malformed JSON", Status: http.StatusBadRequest, Detail: err.Error()}
	case errors.Is(err, io.EOF):
		return &wire.Problem{Title: "malformed JSON", Status: http.StatusBadRequest, Detail: "empty body: send a JSON object"}
	case errors.As(err, &se):
		return &wire.Problem{Title: "malformed JSON", Status: http.StatusBadRequest, Detail: fmt.Sprintf("syntax error at byte %d: %v", se.Offset, err)}
	case errors.As(err, &te):
		return &wire.Problem{Title: "malformed JSON", Status: http.StatusBadRequest, Detail: fmt.Sprintf("%s: must be %s, got %s", te.Field, te.Type, te.Value), Field: te.Field}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &wire.Problem{Title: "malformed JSON", Status: http.StatusBadRequest, Detail: "unexpected end of body"}
	default:
		// Unknown fields ("json: unknown field \"x\"") and bad durations.
		return &wire.Problem{Title: "malformed JSON", Status: http.StatusBadRequest, Detail: err.Error(), Field: unknownField(err)}
	}
}

// unknownField extracts the field name of encoding/json's unknown-field error.
func unknownField(err error) string {
	var name string
	if _, e := fmt.Sscanf(err.Error(), "json: unknown field %q", &name); e == nil {
		return name
	}
	return ""
}
