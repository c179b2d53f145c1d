package tablewatcher

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestJSONValue(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		in   any
		typ  string
		want any
	}{
		{"null", nil, "TEXT", nil},
		{"int", int64(42), "INT8", int64(42)},
		{"time in a zone → UTC", time.Date(2026, 11, 25, 11, 0, 0, 500, berlin), "TIMESTAMPTZ", "2026-11-25T10:00:00.0000005Z"},
		{"UTF-8 bytes → string", []byte("héllo"), "VARCHAR", "héllo"},
		{"other bytes → base64", []byte{0xff, 0x00}, "BLOB", "/wA="},
		{"unsigned bigint as text → number", []byte("18446744073709551615"), "UNSIGNED BIGINT", uint64(math.MaxUint64)},
		{"decimal stays a string", []byte("12.50"), "DECIMAL", "12.50"},
		{"postgres numeric stays a string", "12.50", "NUMERIC", "12.50"},
		{"float32 prints short", float32(0.1), "FLOAT", 0.1},
		{"postgres real prints short", float64(float32(0.1)), "FLOAT4", 0.1},
		{"double", 0.1, "FLOAT8", 0.1},
		{"NaN", math.NaN(), "FLOAT8", "NaN"},
		{"json column decoded", []byte(`{"a": 1, "b": [true]}`), "JSONB", map[string]any{"a": json.Number("1"), "b": []any{true}}},
		{"bad json stays text", "{nope", "JSON", "{nope"},
		{"bool", true, "BOOL", true},
	} {
		if got := jsonValue(tc.in, tc.typ); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: jsonValue(%#v, %s) = %#v; want %#v", tc.name, tc.in, tc.typ, got, tc.want)
		}
	}
}

func TestBindValue(t *testing.T) {
	for _, tc := range []struct {
		in   any
		typ  string
		want any
	}{
		{[]byte("abc"), "VARCHAR", "abc"}, // compared by the column's collation, not bytewise
		{[]byte("abc"), "VARBINARY", []byte("abc")},
		{[]byte("12"), "BIGINT", int64(12)},
		{float32(0.1), "FLOAT", float64(float32(0.1))}, // exact, to compare equal
		{int32(7), "INT", int64(7)},
	} {
		if got := bindValue(tc.in, tc.typ); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("bindValue(%#v, %s) = %#v; want %#v", tc.in, tc.typ, got, tc.want)
		}
	}
}

func TestCanonicalJSON(t *testing.T) {
	got, err := canonicalJSON(map[string]any{"b": "<&>", "a": []any{"x", int64(7)}})
	if err != nil || got != `{"a":["x",7],"b":"<&>"}` {
		t.Errorf("canonicalJSON = %s, %v", got, err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.FixedZone("", 3600))
	for _, cur := range []any{nil, int64(-3), uint64(math.MaxUint64), 1.5, true, "2026-11-25 10:00:00", []byte{0xff}, at} {
		in := state{stored: true, column: "modified", cursor: cur, polls: 4}
		b, err := in.encode()
		if err != nil {
			t.Fatalf("encode %#v: %v", cur, err)
		}
		out, err := decodeState(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		eq := reflect.DeepEqual(out, in)
		if tm, ok := cur.(time.Time); ok {
			ot, _ := out.cursor.(time.Time)
			eq = ot.Equal(tm) && ot.Format(time.RFC3339Nano) == tm.Format(time.RFC3339Nano)
		}
		if bs, ok := cur.([]byte); ok {
			ob, _ := out.cursor.([]byte)
			eq = bytes.Equal(ob, bs)
		}
		if !eq {
			t.Errorf("state %s read back as %#v; want %#v", b, out, in)
		}
	}
	if s, err := decodeState(nil); err != nil || s.stored {
		t.Errorf("no state: %+v, %v", s, err)
	}
	b, _ := state{stored: true, cursor: int64(5), polls: 2}.encode()
	if string(b) != `{"cursor":5,"cursor_type":"int","polls":2}` {
		t.Errorf("wire form %s", b)
	}
	for _, bad := range []string{`{"cursor": "x", "cursor_type": "date"}`, `{"cursor": 1}`, `[1]`} {
		if _, err := decodeState(json.RawMessage(bad)); err == nil {
			t.Errorf("decodeState(%s) accepted", bad)
		}
	}
}
