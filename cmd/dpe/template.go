package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
	"github.com/dpe-engine/dpe/internal/wire"
)

func runTemplate(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: import FILE|DIR, export NAME [--version N], list, delete NAME")
	}
	verb := args[0]
	fs, g := newCommand("template "+verb, e)
	version := fs.Int("version", 0, "template version (export; 0: the latest)")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	switch verb {
	case "import":
		if len(pos) == 0 {
			return usagef("want one or more FILE or DIR arguments")
		}
		files, err := templateFiles(pos)
		if err != nil {
			return usagef("%v", err)
		}
		var out []wire.TemplateImported
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			res, err := c.ImportTemplate(ctx, src, "application/yaml")
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			out = append(out, *res)
			if !g.json() {
				what := "unchanged"
				if res.Created {
					what = "imported"
				}
				fmt.Fprintf(e.stdout, "%s: %s version %d %s\n", f, res.Template.Name, res.Template.Version, what)
			}
		}
		if g.json() {
			return printJSON(e.stdout, out)
		}
		return nil
	case "export":
		if len(pos) != 1 {
			return usagef("want exactly one template NAME")
		}
		t, err := c.GetTemplate(ctx, pos[0], *version)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(e.stdout, t)
		}
		parsed, err := template.Parse([]byte(t.Source), template.ParseOptions{})
		if err != nil {
			return fmt.Errorf("stored template %s version %d: %w", t.Name, t.Version, err)
		}
		parsed.Version = t.Version
		y, err := parsed.YAML()
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(y)
		return err
	case "list":
		items, err := c.ListTemplates(ctx)
		if err != nil {
			return err
		}
		list := wire.Items[model.Template]{Items: items}
		if g.json() {
			return printJSON(e.stdout, list)
		}
		t := newTable(e.stdout, "NAME", "VERSION", "CREATED", "DESCRIPTION")
		for _, x := range list.Items {
			t.row(x.Name, x.Version, x.CreatedAt.Local().Format(time.DateTime), x.Description)
		}
		t.flush()
		return nil
	case "delete":
		if len(pos) != 1 {
			return usagef("want exactly one template NAME")
		}
		if err := c.DeleteTemplate(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "template %s deleted\n", pos[0])
		return nil
	}
	return usagef("unknown subcommand %q: want import, export, list or delete", verb)
}

// templateFiles expands directories to their .yaml, .yml and .json files.
func templateFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		var found []string
		for _, en := range entries {
			ext := strings.ToLower(filepath.Ext(en.Name()))
			if !en.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				found = append(found, filepath.Join(a, en.Name()))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", a)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}
