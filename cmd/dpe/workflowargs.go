package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// argFlag collects repeated --arg KEY=VALUE flags; a key may repeat (the
// values of a list arg).
type argFlag struct {
	keys []string            // in the order first given
	vals map[string][]string // every value of a key, in order
}

func newArgFlag() *argFlag { return &argFlag{vals: map[string][]string{}} }

func (a *argFlag) String() string {
	var parts []string
	for _, k := range a.keys {
		for _, v := range a.vals[k] {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

func (a *argFlag) Set(s string) error {
	key, val, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if _, seen := a.vals[key]; !seen {
		a.keys = append(a.keys, key)
	}
	a.vals[key] = append(a.vals[key], val)
	return nil
}

// startArgs builds the args of `workflow start` from --args-json and
// --arg, typed by the template's declared args (fetched from the server):
//
//   - --arg values of a list arg: each --arg adds one element
//     (--arg files=a --arg files=b), or one --arg gives the whole list
//     as JSON (--arg 'files=["a","b"]');
//   - any other arg takes one --arg; its value goes as the string given
//     (the server converts it to an int, number, bool or duration), except
//     that a map or untyped arg takes a JSON object or list;
//   - --arg wins over the same key in --args-json.
//
// Then relative paths are made absolute, as job submit does for path
// params (a processor refuses relative paths): a value of a string arg,
// or a string element of a list arg, that is a relative path naming an
// existing file or directory under the working directory becomes its
// absolute path. Values that name nothing there, absolute paths and
// loc:NAME/... paths go unchanged. When the template cannot be fetched
// (it does not exist) the args go untyped and unresolved, and the start
// gets the server's answer.
func startArgs(ctx context.Context, c *client.Client, tplName string, version int, kv *argFlag, raw string) (json.RawMessage, error) {
	m := map[string]any{}
	if raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, usagef("--args-json: want a JSON object: %v", err)
		}
	}
	specs, err := templateArgs(ctx, c, tplName, version)
	if err != nil {
		return nil, err
	}
	for _, k := range kv.keys {
		v, err := argValue(k, specs[k].Type, kv.vals[k])
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	for k, v := range m {
		switch specs[k].Type {
		case template.ArgString:
			m[k] = absIfRelative(v)
		case template.ArgList:
			if l, ok := v.([]any); ok {
				for i := range l {
					l[i] = absIfRelative(l[i])
				}
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode args: %w", err)
	}
	return b, nil
}

// templateArgs fetches the declared args of a template version; none when
// it does not exist.
func templateArgs(ctx context.Context, c *client.Client, name string, version int) (map[string]template.ArgSpec, error) {
	mt, err := c.GetTemplate(ctx, name, version)
	if errors.Is(err, model.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t, err := template.Parse([]byte(mt.Source), template.ParseOptions{})
	if err != nil {
		return nil, fmt.Errorf("template %s version %d: %w", mt.Name, mt.Version, err)
	}
	return t.Args, nil
}

// argValue is the value of --arg key given vals (at least one), for an
// arg of type typ ("" when the template does not declare it).
func argValue(key string, typ template.ArgType, vals []string) (any, error) {
	jsonOf := func(s string, open ...string) (any, bool) {
		t := strings.TrimSpace(s)
		for _, o := range open {
			if strings.HasPrefix(t, o) {
				var v any
				if json.Unmarshal([]byte(t), &v) == nil {
					return v, true
				}
			}
		}
		return nil, false
	}
	if typ == template.ArgList || (typ == "" && len(vals) > 1) {
		if len(vals) == 1 {
			if v, ok := jsonOf(vals[0], "["); ok {
				return v, nil
			}
		}
		l := make([]any, len(vals))
		for i, v := range vals {
			l[i] = v
		}
		return l, nil
	}
	if len(vals) > 1 {
		return nil, usagef("--arg %s given %d times: only a list arg takes several values", key, len(vals))
	}
	switch typ {
	case template.ArgMap, template.ArgAny, "":
		if v, ok := jsonOf(vals[0], "[", "{"); ok {
			return v, nil
		}
	}
	return vals[0], nil
}

// absIfRelative returns the absolute path of v when v is a string naming
// an existing file or directory relative to the working directory, else v.
func absIfRelative(v any) any {
	s, ok := v.(string)
	if !ok || s == "" || filepath.IsAbs(s) || strings.HasPrefix(s, "loc:") || strings.Contains(s, "://") {
		return v
	}
	if _, err := os.Stat(s); err != nil {
		return v
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return v
	}
	return abs
}
