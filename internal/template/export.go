package template

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// Canonical returns the canonical JSON form of t, for storage and hashing:
// fixed field order, user maps sorted by key, defaults left out (as: item,
// concurrency: 1, fail_fast: true, on_error: fail, concurrency: allow),
// generated ids left out, durations normalized ("10m0s"). Two imports of
// the same template give equal bytes; Parse(t.YAML()) gives the same
// Canonical as t.
func (t *Template) Canonical() ([]byte, error) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, t.doc(true, true)); err != nil {
		return nil, fmt.Errorf("canonical %s: %w", t.Name, err)
	}
	return buf.Bytes(), nil
}

// ContentHash is the hex SHA-256 of the canonical form without the
// version: equal hashes mean a re-import changes nothing but the number.
func (t *Template) ContentHash() (string, error) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, t.doc(true, false)); err != nil {
		return "", fmt.Errorf("hash %s: %w", t.Name, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// YAML exports t as a YAML document in the source format, args in their
// declared order. Parse of the result gives an equal Canonical.
func (t *Template) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(t.doc(false, true)); err != nil {
		return nil, fmt.Errorf("export %s: %w", t.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("export %s: %w", t.Name, err)
	}
	return buf.Bytes(), nil
}

// omap is a mapping that keeps its key order in JSON and YAML.
type omap []kv

// kv is one entry of an omap.
type kv struct {
	k string
	v any
}

// add appends k: v.
func (m *omap) add(k string, v any) { *m = append(*m, kv{k, v}) }

// MarshalYAML renders m as a mapping node in order.
func (m omap) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, e := range m {
		var v yaml.Node
		if err := v.Encode(e.v); err != nil {
			return nil, fmt.Errorf("%s: %w", e.k, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.k}, &v)
	}
	return n, nil
}

// doc builds the ordered document of t. canonical sorts args by name;
// version says whether to include the version.
func (t *Template) doc(canonical, version bool) omap {
	var d omap
	d.add("name", t.Name)
	if version && t.Version != 0 {
		d.add("version", t.Version)
	}
	if t.Description != "" {
		d.add("description", t.Description)
	}
	if t.Concurrency != "" && t.Concurrency != ConcurrencyAllow {
		d.add("concurrency", t.Concurrency)
	}
	if t.ConcurrencyKey != nil {
		d.add("concurrency_key", t.ConcurrencyKey.src)
	}
	if t.Timeout > 0 {
		d.add("timeout", t.Timeout.String())
	}
	if len(t.ArgNames) > 0 {
		names := append([]string(nil), t.ArgNames...)
		if canonical {
			sort.Strings(names)
		}
		var args omap
		for _, n := range names {
			args.add(n, t.Args[n].doc())
		}
		d.add("args", args)
	}
	d.add("steps", stepsDoc(t.Steps))
	if len(t.Output) > 0 {
		out := make(map[string]any, len(t.Output))
		for k, v := range t.Output {
			out[k] = v.Source()
		}
		d.add("output", out)
	}
	return d
}

// doc renders an arg declaration.
func (s ArgSpec) doc() omap {
	var d omap
	d.add("type", string(s.Type))
	if s.Required {
		d.add("required", true)
	}
	if s.HasDefault {
		d.add("default", s.Default)
	}
	if s.Description != "" {
		d.add("description", s.Description)
	}
	return d
}

// stepsDoc renders a list of activities.
func stepsDoc(list []*Activity) []any {
	out := make([]any, len(list))
	for i, a := range list {
		out[i] = a.doc()
	}
	return out
}

// exprSource is the text of e, "" for nil.
func exprSource(e *Expr) string {
	if e == nil {
		return ""
	}
	return e.src
}

// doc renders one activity: id, kind key, the kind's fields, on_error.
func (a *Activity) doc() omap {
	var d omap
	if !a.AutoID {
		d.add("id", a.ID)
	}
	switch a.Kind {
	case KindJob:
		d.add("job", a.JobType)
		if len(a.Params.dict) > 0 {
			d.add("params", a.Params.Source())
		}
		if a.Priority != 0 {
			d.add("priority", a.Priority)
		}
		if r := a.Retry; r != (Retry{}) {
			var rd omap
			if r.MaxAttempts > 0 {
				rd.add("max_attempts", r.MaxAttempts)
			}
			if r.Backoff > 0 {
				rd.add("backoff", r.Backoff.String())
			}
			if r.BackoffMax > 0 {
				rd.add("backoff_max", r.BackoffMax.String())
			}
			d.add("retry", rd)
		}
		if a.Timeout > 0 {
			d.add("timeout", a.Timeout.String())
		}
		if len(a.Selector) > 0 {
			sel := make(map[string]any, len(a.Selector))
			for k, v := range a.Selector {
				sel[k] = v
			}
			d.add("selector", sel)
		}
	case KindSequence:
		d.add("sequence", stepsDoc(a.Children))
	case KindParallel:
		d.add("parallel", stepsDoc(a.Children))
		if !a.FailFast {
			d.add("fail_fast", false)
		}
	case KindIf:
		d.add("if", exprSource(a.Cond))
		d.add("then", stepsDoc(a.Then))
		if len(a.Else) > 0 {
			d.add("else", stepsDoc(a.Else))
		}
	case KindForeach:
		d.add("foreach", exprSource(a.Items))
		if a.As != "item" {
			d.add("as", a.As)
		}
		if a.Concurrency != 1 {
			d.add("concurrency", a.Concurrency)
		}
		d.add("do", stepsDoc(a.Do))
	case KindSet:
		set := make(map[string]any, len(a.Set))
		for k, v := range a.Set {
			set[k] = v.Source()
		}
		d.add("set", set)
	case KindLog, KindFail:
		d.add(string(a.Kind), a.Message.Source())
	case KindDelay:
		d.add("delay", a.Delay.Source())
	case KindWorkflow:
		d.add("workflow", a.Template)
		if len(a.Args.dict) > 0 {
			d.add("args", a.Args.Source())
		}
		if a.Timeout > 0 {
			d.add("timeout", a.Timeout.String())
		}
	case KindTry:
		d.add("try", stepsDoc(a.Children))
		if len(a.Catch) > 0 {
			d.add("catch", stepsDoc(a.Catch))
		}
		if len(a.Finally) > 0 {
			d.add("finally", stepsDoc(a.Finally))
		}
	}
	switch a.OnError.Action {
	case OnErrorContinue:
		d.add("on_error", string(OnErrorContinue))
	case OnErrorSteps:
		d.add("on_error", stepsDoc(a.OnError.Steps))
	}
	return d
}

// writeJSON writes v as compact JSON without HTML escaping: omap in order,
// other maps sorted by key.
func writeJSON(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case omap:
		buf.WriteByte('{')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeScalar(buf, e.k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeJSON(buf, e.v); err != nil {
				return fmt.Errorf("%s: %w", e.k, err)
			}
		}
		buf.WriteByte('}')
		return nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := make(omap, len(keys))
		for i, k := range keys {
			m[i] = kv{k, x[k]}
		}
		return writeJSON(buf, m)
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	}
	return writeScalar(buf, v)
}

// writeScalar writes one JSON scalar.
func writeScalar(buf *bytes.Buffer, v any) error {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	if _, isString := v.(string); !isString {
		buf.Write(b)
		return nil
	}
	// JSON leaves DEL, the C1 controls and a few others raw, but YAML
	// forbids them: escape them so that canonical JSON parses as a
	// template too.
	for _, r := range string(b) {
		if yamlPrintable(r) {
			buf.WriteRune(r)
		} else {
			fmt.Fprintf(buf, "\\u%04x", r)
		}
	}
	return nil
}

// yamlPrintable reports whether YAML allows r unescaped (YAML 1.2 §5.1).
func yamlPrintable(r rune) bool {
	switch {
	case r == 0x09 || r == 0x0A || r == 0x0D || r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7E:
		return true
	case r >= 0xA0 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return r != 0xFEFF
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
