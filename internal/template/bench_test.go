package template

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeed reads the input of a committed FuzzParse seed file.
func fuzzSeed(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile("testdata/fuzz/FuzzParse/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	vals, err := parseCorpusFile(data)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return vals
}

// BenchmarkParse parses the example ingest-loudness template, a normal
// template with args, a foreach, a try and a dozen expressions.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("../../examples/templates/ingest-loudness.yaml")
	if err != nil {
		b.Fatal(err)
	}
	opts := testOptions()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAliasBomb parses testdata/fuzz/FuzzParse/alias_bomb, a
// 400-byte document whose aliases name tens of thousands of steps.
func BenchmarkParseAliasBomb(b *testing.B) {
	data := fuzzSeed(b, "alias_bomb")
	opts := testOptions()
	for b.Loop() {
		_, _ = Parse(data, opts)
	}
}

// parseCorpusFile reads a "go test fuzz v1" file holding one []byte.
func parseCorpusFile(data []byte) ([]byte, error) {
	body, ok := strings.CutPrefix(string(data), "go test fuzz v1\n")
	if !ok {
		return nil, fmt.Errorf("not a go test fuzz v1 file")
	}
	body = strings.TrimSpace(body)
	q, ok := strings.CutPrefix(body, "[]byte(")
	if !ok || !strings.HasSuffix(q, ")") {
		return nil, fmt.Errorf("want one []byte value, got %.40q", body)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
	if err != nil {
		return nil, fmt.Errorf("bad []byte value: %w", err)
	}
	return []byte(s), nil
}
