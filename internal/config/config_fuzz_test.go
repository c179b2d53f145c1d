package config

import (
	"bytes"
	"errors"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/model"
)

// FuzzParse checks the configuration file: Parse never panics and refuses
// only with a *config.Error matching ErrInvalid; a file it accepts, written
// back as YAML, is accepted again and writes back the same (defaults are filled in once).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"schedules:\n  - {name: a, cron: '0 2 * * *', timezone: Europe/Berlin, template: t, args: {x: 1}}\n",
		"processor:\n  quota: {util.copy: 2, exec: 1}\n",
		"locations:\n  archive: [/srv/a, /srv/b]\n",
		"schedules: [\n",
		"schedule:\n  - name: x\n",
		"processor:\n  quota: {util.copy: 0}\n",
		"a: &a [*a]\n",
		"alerts:\n  every: 5s\n  receivers: [{name: ops, webhook: 'http://h/x', timeout: 2s}]\n  rules:\n    - {name: f, kind: workflow_failed, match: ['ingest*'], max_per_minute: 3}\n    - {name: g, kind: group_inactive, for: 1m}\n",
		"table_watchers:\n  - {name: m, dsn: 'sqlite:/tmp/x.db', table: 'music; drop', key: [id], on: {created: {template: t}}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse("dpe.yaml", b)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("Parse(%q) = %T %v, want a *config.Error", b, err, err)
			}
			return
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("accepted %q does not encode: %v", b, err)
		}
		back, err := Parse("dpe.yaml", out)
		if err != nil {
			t.Fatalf("accepted %q, written back as\n%s\nis refused: %v", b, out, err)
		}
		again, err := yaml.Marshal(back)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("%q written back as\n%s\nthen as\n%s%v", b, out, again, err)
		}
	})
}
