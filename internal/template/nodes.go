package template

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Helpers that read yaml.v3 nodes strictly: every wrong kind or tag is a
// Problem with the node's line, and nothing is guessed.

// maxNodes bounds the nodes of one template, aliases expanded, and
// maxAliasNodes the nodes its aliases add: a few aliases of aliases (a
// "billion laughs") name a huge tree in a few hundred bytes, and reading
// that tree costs time and memory in proportion to its expanded size.
// Both are checked on the syntax tree before it is read (checkSize), so
// such a document is refused in microseconds, and the time Parse takes
// stays in proportion to the bytes it is given. 10,000 nodes are far
// more than any template reuses (a retry policy or a params block used
// in a hundred steps is a thousand).
const (
	maxNodes      = 200_000
	maxAliasNodes = 10_000
)

// entry is one key/value pair of a mapping.
type entry struct {
	key  string
	line int
	val  *yaml.Node
}

// checkSize refuses a tree that is too large once its aliases are
// expanded, or whose aliases refer to a node that contains them. It
// counts without expanding: the expanded size of each anchored node is
// computed once, so the work is linear in the nodes as written. field
// names the tree in messages: "" for a whole template, a field for a
// value (CompileData).
func (p *parser) checkSize(root *yaml.Node, field string) bool {
	what := "template"
	if field != "" {
		what = "value"
	}
	s := sizer{memo: map[*yaml.Node]int{}, busy: map[*yaml.Node]bool{}}
	own, added := 0, 0
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		own++
		if own > maxNodes {
			p.probs.add(n.Line, "", field, "%s too large: more than %d nodes", what, maxNodes)
			return false
		}
		if n.Kind == yaml.AliasNode {
			size, cycle := s.size(n.Alias)
			if cycle {
				p.probs.add(n.Line, "", field, "alias *%s refers to a node that contains it", n.Value)
				return false
			}
			added += size
			if added > maxAliasNodes {
				p.probs.add(n.Line, "", field, "%s too large: its aliases expand to more than %d nodes (counted up to alias *%s)", what, maxAliasNodes, n.Value)
				return false
			}
			return true
		}
		for _, c := range n.Content {
			if !walk(c) {
				return false
			}
		}
		return true
	}
	return walk(root)
}

// sizer computes expanded sizes of alias targets.
type sizer struct {
	memo map[*yaml.Node]int  // expanded size of anchored nodes seen
	busy map[*yaml.Node]bool // anchored nodes being counted
}

// size returns the nodes of n with aliases expanded, saturated just past
// maxAliasNodes (a larger count is refused anyway, and saturating keeps
// sums from overflowing), and whether an alias inside n refers to a node
// that contains it.
func (s *sizer) size(n *yaml.Node) (int, bool) {
	if n == nil {
		return 0, false
	}
	if v, ok := s.memo[n]; ok {
		return v, false
	}
	if s.busy[n] {
		return 0, true
	}
	s.busy[n] = true
	children := n.Content
	if n.Kind == yaml.AliasNode {
		children = []*yaml.Node{n.Alias}
	}
	total := 1
	for _, c := range children {
		v, cycle := s.size(c)
		if cycle {
			return 0, true
		}
		total = min(total+v, maxAliasNodes+1)
	}
	delete(s.busy, n)
	s.memo[n] = total
	return total, false
}

// deref follows aliases to the node they name.
func (p *parser) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// kindName names a node's kind for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a bool"
		case "!!null":
			return "null"
		}
		return "a " + n.ShortTag() + " scalar"
	}
	return "something else"
}

// entries returns the pairs of mapping n, refusing non-string keys,
// duplicate keys and merge keys. n must already be dereferenced.
func (p *parser) entries(n *yaml.Node, step, field string) []entry {
	out := make([]entry, 0, len(n.Content)/2)
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := p.deref(n.Content[i])
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			if k.ShortTag() == "!!merge" {
				p.probs.add(k.Line, step, field, "merge keys (<<) are not supported")
			} else {
				p.probs.add(k.Line, step, field, "keys must be strings, got %s", kindName(k))
			}
			continue
		}
		if l, dup := first[k.Value]; dup {
			p.probs.add(k.Line, step, join(field, k.Value), "duplicate key (first on line %d)", l)
			continue
		}
		first[k.Value] = k.Line
		out = append(out, entry{key: k.Value, line: k.Line, val: n.Content[i+1]})
	}
	return out
}

// mapping dereferences n and checks that it is a mapping.
func (p *parser) mapping(n *yaml.Node, step, field string) (*yaml.Node, bool) {
	n = p.deref(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		p.probs.add(n.Line, step, field, "want a mapping, got %s", kindName(n))
		return nil, false
	}
	return n, true
}

// str reads a string scalar.
func (p *parser) str(n *yaml.Node, step, field string) (string, bool) {
	n = p.deref(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.probs.add(n.Line, step, field, "want a string, got %s", kindName(n))
		return "", false
	}
	if !utf8.ValidString(n.Value) {
		p.probs.add(n.Line, step, field, "not valid UTF-8")
		return "", false
	}
	return n.Value, true
}

// integer reads an int scalar within [lo, hi].
func (p *parser) integer(n *yaml.Node, step, field string, lo, hi int) (int, bool) {
	n = p.deref(n)
	if n == nil {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.probs.add(n.Line, step, field, "want an integer, got %s", kindName(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < int64(lo) || v > int64(hi) {
		p.probs.add(n.Line, step, field, "%s is out of range [%d, %d]", n.Value, lo, hi)
		return 0, false
	}
	return int(v), true
}

// boolean reads a bool scalar.
func (p *parser) boolean(n *yaml.Node, step, field string) (bool, bool) {
	n = p.deref(n)
	if n == nil {
		return false, false
	}
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.probs.add(n.Line, step, field, "want true or false, got %s", kindName(n))
		return false, false
	}
	return v, true
}

// duration reads a positive Go duration string.
func (p *parser) duration(n *yaml.Node, step, field string) (time.Duration, bool) {
	s, ok := p.str(n, step, field)
	if !ok {
		return 0, false
	}
	d, err := parseDuration(s, false)
	if err != nil {
		p.probs.add(n.Line, step, field, "%v", err)
		return 0, false
	}
	return d, true
}

// scalar converts a scalar node to a literal: nil, bool, int, float64 or
// string. Timestamps stay strings; binary and custom tags are refused.
func (p *parser) scalar(n *yaml.Node, step, field string) (any, bool) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		if !utf8.ValidString(n.Value) {
			p.probs.add(n.Line, step, field, "not valid UTF-8")
			return nil, false
		}
		return n.Value, true
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			p.probs.add(n.Line, step, field, "bad bool %q", n.Value)
			return nil, false
		}
		return b, true
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil || i > math.MaxInt || i < math.MinInt {
			p.probs.add(n.Line, step, field, "integer %s is out of range", n.Value)
			return nil, false
		}
		return int(i), true
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			p.probs.add(n.Line, step, field, "bad number %q", n.Value)
			return nil, false
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			p.probs.add(n.Line, step, field, "%s is not a finite number", n.Value)
			return nil, false
		}
		if f == 0 {
			f = 0 // drop the sign of -0, which JSON and YAML do not keep apart
		}
		return f, true
	}
	p.probs.add(n.Line, step, field, "unsupported YAML tag %s", n.Tag)
	return nil, false
}

// join appends key to a dotted field path.
func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// index appends [i] to a field path.
func index(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

// quoteList renders names for messages: a, b or c.
func quoteList[T ~string](names []T) string {
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			s += " or "
		default:
			s += ", "
		}
		s += fmt.Sprint(n)
	}
	return s
}
