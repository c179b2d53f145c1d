package tablewatcher

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// state is what a watcher keeps in the core DB (Trigger.State), stored by
// the server with the page that moves it on, so any copy continues from
// it. It has no clock in it: the cursor is the version column's own value.
type state struct {
	// stored: the server holds a state, so a full pass has completed.
	stored bool
	// column is the version column the cursor belongs to ("" without).
	column string
	// cursor is the highest version reported (a raw value as it binds
	// back); nil: none seen yet (an empty table).
	cursor any
	// polls counts incremental polls since the last full pass.
	polls int
}

// stateJSON is state on the wire:
// {"column": "modified", "cursor": "2026-11-25T10:00:00Z", "cursor_type": "time", "polls": 3}.
type stateJSON struct {
	Column string          `json:"column,omitempty"`
	Cursor json.RawMessage `json:"cursor"`
	// CursorType says how to bind Cursor back: int, uint, float, bool,
	// string, bytes (base64) or time (RFC 3339).
	CursorType string `json:"cursor_type,omitempty"`
	Polls      int    `json:"polls"`
}

// encode writes s for Observation.State.
func (s state) encode() (json.RawMessage, error) {
	w := stateJSON{Column: s.column, Cursor: json.RawMessage("null"), Polls: s.polls}
	if s.cursor != nil {
		raw, typ, err := encodeCursor(s.cursor)
		if err != nil {
			return nil, err
		}
		w.Cursor, w.CursorType = raw, typ
	}
	return json.Marshal(w)
}

// decodeState reads a stored state; empty or null is no state.
func decodeState(b json.RawMessage) (state, error) {
	if len(b) == 0 || string(b) == "null" {
		return state{}, nil
	}
	var w stateJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return state{}, fmt.Errorf("stored state %s: %w", b, err)
	}
	s := state{stored: true, column: w.Column, polls: max(w.Polls, 0)}
	if len(w.Cursor) > 0 && string(w.Cursor) != "null" {
		v, err := decodeCursor(w.Cursor, w.CursorType)
		if err != nil {
			return state{}, fmt.Errorf("stored state %s: cursor: %w", b, err)
		}
		s.cursor = v
	}
	return s, nil
}

// encodeCursor writes a raw version value as JSON with the type to bind
// it back as (JSON alone cannot tell a time from a string).
func encodeCursor(v any) (json.RawMessage, string, error) {
	var (
		typ string
		out any
	)
	switch x := v.(type) {
	case int64:
		typ, out = "int", x
	case uint64:
		typ, out = "uint", x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, "", fmt.Errorf("%v cannot be a version", x)
		}
		typ, out = "float", x
	case bool:
		typ, out = "bool", x
	case string:
		typ, out = "string", x
	case []byte:
		typ, out = "bytes", base64.StdEncoding.EncodeToString(x)
	case time.Time:
		// RFC 3339 with the offset the driver gave, so the value binds
		// back as the same instant and wall clock.
		typ, out = "time", x.Format(time.RFC3339Nano)
	default:
		return nil, "", fmt.Errorf("a %T cannot be a version", v)
	}
	b, err := json.Marshal(out)
	return b, typ, err
}

// decodeCursor reads back what encodeCursor wrote.
func decodeCursor(raw json.RawMessage, typ string) (any, error) {
	var err error
	switch typ {
	case "int":
		var n int64
		err = json.Unmarshal(raw, &n)
		return n, err
	case "uint":
		var n uint64
		err = json.Unmarshal(raw, &n)
		return n, err
	case "float":
		var f float64
		err = json.Unmarshal(raw, &f)
		return f, err
	case "bool":
		var b bool
		err = json.Unmarshal(raw, &b)
		return b, err
	case "string":
		var s string
		err = json.Unmarshal(raw, &s)
		return s, err
	case "bytes":
		var s string
		if err = json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(s)
	case "time":
		var s string
		if err = json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return time.Parse(time.RFC3339Nano, s)
	case "":
		return nil, errors.New("no cursor_type")
	}
	return nil, fmt.Errorf("unknown cursor_type %q", typ)
}
