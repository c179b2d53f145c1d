package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// frame is one open object or array of scanJSON.
type frame struct {
	obj     bool
	keys    map[string]struct{} // obj: the keys seen
	key     string              // obj: the current key
	wantKey bool                // obj: the next string is a key
	n       int                 // array: items seen
	max     int                 // array: its cap, 0 for none
	field   string              // array: the capped field
}

// errMoreValues: a body holding a second value after the first.
var errMoreValues = errors.New("body holds more than one JSON value")

// scanJSON reads one JSON value from r, byte by byte as it arrives, and
// checks what decoding into a struct would not: no object holds a key
// twice, and the top-level arrays named by caps hold at most their cap.
// It stops at the first fault, having read no further than needed to see
// it, and otherwise reads r to its end. It does not check the syntax
// (the decoder that follows does): on a malformed body it may stop early
// with any error, or none. It is a byte loop rather than
// json.Decoder.Token, which allocated per token and doubled the cost of
// every body.
func scanJSON(r io.Reader, caps []itemCap) error {
	br := bufio.NewReaderSize(r, 32<<10)
	var stack []*frame
	started := false
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			switch {
			case !started:
				return io.EOF
			case len(stack) > 0:
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch c {
		case ' ', '\t', '\n', '\r', ':', ',':
			continue
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if started && len(stack) == 0 {
			return errMoreValues
		}
		started = true
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if c == '"' {
			s, err := readString(br)
			if err != nil {
				return err
			}
			if top != nil && top.obj && top.wantKey {
				k := s
				if bytes.IndexByte(s, '\\') >= 0 {
					var u string
					if json.Unmarshal(append(append([]byte{'"'}, s...), '"'), &u) == nil {
						k = []byte(u)
					}
				}
				if _, dup := top.keys[string(k)]; dup {
					return &dupError{path: pathOf(stack, string(k))}
				}
				top.keys[string(k)] = struct{}{}
				top.key, top.wantKey = string(k), false
				continue
			}
		}
		// A value starts.
		if top != nil {
			if top.obj {
				top.wantKey = true
			} else if top.n++; top.max > 0 && top.n > top.max {
				return &capError{field: top.field, max: top.max}
			}
		}
		switch c {
		case '{':
			stack = append(stack, &frame{obj: true, keys: map[string]struct{}{}, wantKey: true})
		case '[':
			f := &frame{}
			if len(stack) == 1 && top.obj {
				for _, cp := range caps {
					if cp.field == top.key {
						f.max, f.field = cp.max, cp.field
					}
				}
			}
			stack = append(stack, f)
		case '"':
			// a string value, read above
		default:
			// A number, true, false or null: up to the next delimiter.
			for {
				c, err := br.ReadByte()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if bytes.IndexByte([]byte(" \t\n\r,:]}[{\""), c) >= 0 {
					_ = br.UnreadByte()
					break
				}
			}
		}
	}
}

// readString reads the rest of a string after its opening quote and
// returns its raw content (escapes kept).
func readString(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('"')
		if errors.Is(err, bufio.ErrBufferFull) {
			out = append(out, chunk...)
			continue
		}
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		out = append(out, chunk[:len(chunk)-1]...)
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for i := len(out) - 1; i >= 0 && out[i] == '\\'; i-- {
			n++
		}
		if n%2 == 0 {
			return out, nil
		}
		out = append(out, '"')
	}
}
