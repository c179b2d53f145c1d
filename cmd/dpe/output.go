package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// printJSON writes v as indented JSON (the -o json output).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns for human output.
type table struct{ tw *tabwriter.Writer }

// newTable starts a table with an optional header row.
func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		cells := make([]any, len(header))
		for i, h := range header {
			cells[i] = h
		}
		t.row(cells...)
	}
	return t
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() { _ = t.tw.Flush() }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// textWidth is the width human output wraps long text to when stdout is
// not a terminal (or its size is unknown).
const textWidth = 100

// outputWidth is the width to wrap human output on w to: the terminal's
// when w is one, else textWidth.
func outputWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols >= 40 {
			return cols
		}
	}
	return textWidth
}

// isTerminal reports whether w is a terminal (progress bars are drawn only
// there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// wrap splits s into lines of at most width runes: at its own line breaks,
// then at spaces, cutting words only when one is longer than a line. Tabs
// become spaces and trailing blanks go, so no line carries a control
// character that would break a table.
func wrap(s string, width int) []string {
	width = max(width, 10)
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\t", "    ")
	var out []string
	for _, para := range strings.Split(strings.TrimRight(s, "\n "), "\n") {
		para = strings.TrimRight(para, " ")
		if para == "" {
			out = append(out, "")
			continue
		}
		line := []rune{}
		for _, word := range strings.Split(para, " ") {
			w := []rune(word)
			switch {
			case len(line) == 0:
			case len(line)+1+len(w) <= width:
				line = append(line, ' ')
			default:
				out = append(out, string(line))
				line = line[:0]
			}
			for len(line)+len(w) > width {
				n := width - len(line)
				out = append(out, string(append(line, w[:n]...)))
				line, w = line[:0], w[n:]
			}
			line = append(line, w...)
		}
		out = append(out, string(line))
	}
	return out
}

// fields writes "key  value" lines with the values aligned; a long or
// multi-line value is wrapped and its further lines indented under the
// first, so the column never breaks.
type fields struct {
	keys, values []string
}

func (f *fields) add(key string, value any) {
	f.keys = append(f.keys, key)
	f.values = append(f.values, fmt.Sprint(value))
}

func (f *fields) write(w io.Writer, width int) {
	kw := 0
	for _, k := range f.keys {
		kw = max(kw, utf8.RuneCountInString(k))
	}
	pad := strings.Repeat(" ", kw+2)
	for i, k := range f.keys {
		for j, l := range wrap(f.values[i], width-len(pad)) {
			if j == 0 {
				fmt.Fprintf(w, "%-*s  %s\n", kw, k, l)
			} else {
				fmt.Fprintf(w, "%s%s\n", pad, l)
			}
		}
	}
}

// writeLabeled writes "indent label: text", the text wrapped to width and
// its further lines indented under its first.
func writeLabeled(w io.Writer, indent, label, text string, width int) {
	head := label + ": "
	room := max(width-utf8.RuneCountInString(indent)-len(head), 20)
	for j, l := range wrap(text, room) {
		if j > 0 {
			head = strings.Repeat(" ", len(head))
		}
		fmt.Fprintln(w, strings.TrimRight(indent+head+l, " "))
	}
}

// formatDuration rounds d for people: milliseconds under a second, then
// hundredths of a second, whole seconds from a minute on.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
