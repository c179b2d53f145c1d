package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// withETag answers a GET with a weak ETag computed from the body, and 304
// Not Modified when the request's If-None-Match names it. The tag depends on
// the bytes only, so two servers behind a load balancer give the same tag
// for the same state and a poller's revalidation works against either.
// It buffers the answer: use it only on routes that answer promptly (not
// on long polls or streams).
func withETag(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &bufferWriter{header: w.Header(), status: http.StatusOK}
		h(rec, r)
		if rec.status != http.StatusOK {
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
			return
		}
		sum := sha256.Sum256(rec.body.Bytes())
		tag := `W/"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		w.Header().Set("ETag", tag)
		// The monitor polls every few seconds: any cache must revalidate.
		w.Header().Set("Cache-Control", "no-cache")
		if etagMatch(r.Header.Get("If-None-Match"), tag) {
			w.Header().Del("Content-Type")
			w.Header().Del("Content-Length")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// etagMatch applies the weak comparison of If-None-Match (RFC 9110
// 13.1.2): any listed tag equal to tag, ignoring the W/ prefix, or "*".
func etagMatch(header, tag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(tag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

// bufferWriter holds an answer until its ETag is known.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
