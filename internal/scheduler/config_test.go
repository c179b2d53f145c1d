package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func valid() Config {
	return Config{Name: "nightly-purge", Cron: "0 2 * * *", Timezone: "Europe/Berlin", Template: "purge"}
}

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(c *Config)
		want   []string // substrings of the error
		fields []string // ConfigError fields expected
	}{
		{"bad cron", func(c *Config) { c.Cron = "0 2 * *" }, []string{`schedule "nightly-purge": cron: "0 2 * *": expected 5 to 6 fields, found 4`}, []string{"cron"}},
		{"cron out of range", func(c *Config) { c.Cron = "61 * * * *" }, []string{`cron: "61 * * * *": end of range (61) above maximum (59)`}, []string{"cron"}},
		{"cron 7 fields", func(c *Config) { c.Cron = "0 0 2 * * * 2026" }, []string{`cron: "0 0 2 * * * 2026": expected 5 to 6 fields, found 7`}, []string{"cron"}},
		{"cron missing", func(c *Config) { c.Cron = "" }, []string{`cron: "": missing`}, []string{"cron"}},
		{"cron never fires", func(c *Config) { c.Cron = "0 0 30 2 *" }, []string{`cron: "0 0 30 2 *": never fires`}, []string{"cron"}},
		{"cron @every", func(c *Config) { c.Cron = "@every 5s" }, []string{`cron: "@every 5s": @every counts from the last fire`}, []string{"cron"}},
		{"cron zone prefix", func(c *Config) { c.Cron = "CRON_TZ=Asia/Tokyo 0 2 * * *" }, []string{"use the timezone field"}, []string{"cron"}},
		{"unknown descriptor", func(c *Config) { c.Cron = "@fortnightly" }, []string{`cron: "@fortnightly": unrecognized descriptor`}, []string{"cron"}},
		{"unknown timezone", func(c *Config) { c.Timezone = "Europe/Atlantis" }, []string{`timezone: "Europe/Atlantis" is not a known IANA time zone`}, []string{"timezone"}},
		{"local timezone", func(c *Config) { c.Timezone = "Local" }, []string{`timezone: "Local" depends on the host`}, []string{"timezone"}},
		{"missing template", func(c *Config) { c.Template = "" }, []string{`schedule "nightly-purge": template: missing`}, []string{"template"}},
		{"bad template name", func(c *Config) { c.Template = "Purge Now" }, []string{`template: "Purge Now" is not a template name`}, []string{"template"}},
		{"missing name", func(c *Config) { c.Name = "" }, []string{`schedule "": name: "" is not a schedule name`}, []string{"name"}},
		{"name with slash", func(c *Config) { c.Name = "a/b" }, []string{`name: "a/b" is not a schedule name`}, []string{"name"}},
		{"bad misfire", func(c *Config) { c.Misfire = "sometimes" }, []string{`misfire: "sometimes": want skip, once or all`}, []string{"misfire"}},
		{"negative misfire limit", func(c *Config) { c.MisfireLimit = -1 }, []string{`misfire_limit: -1 is negative`}, []string{"misfire_limit"}},
		{"negative misfire grace", func(c *Config) { c.MisfireGrace = -time.Second }, []string{`misfire_grace: -1s is negative`}, []string{"misfire_grace"}},
		{"bad overlap", func(c *Config) { c.Overlap = "queue" }, []string{`overlap: "queue": want allow or skip`}, []string{"overlap"}},
		{"negative priority", func(c *Config) { c.Priority = -5 }, []string{`priority: -5: want 0 to 1000`}, []string{"priority"}},
		{"approval without url", func(c *Config) { c.Approval = &Approval{} }, []string{`approval.url: "": missing`}, []string{"approval.url"}},
		{"approval ftp url", func(c *Config) { c.Approval = &Approval{URL: "ftp://gate/ok"} }, []string{`approval.url: "ftp://gate/ok": scheme must be http or https`}, []string{"approval.url"}},
		{"approval negative timeout", func(c *Config) { c.Approval = &Approval{URL: "http://gate/ok", Timeout: -time.Second} }, []string{`approval.timeout: -1s is negative`}, []string{"approval.timeout"}},
		{"throttle zero", func(c *Config) { c.Throttle = &Throttle{} }, []string{`throttle.max_running: 0: want at least 1`}, []string{"throttle.max_running"}},
		{"throttle bad when_full", func(c *Config) { c.Throttle = &Throttle{MaxRunning: 2, WhenFull: "queue"} }, []string{`throttle.when_full: "queue": want skip or wait`}, []string{"throttle.when_full"}},
		{"args not JSON", func(c *Config) { c.Args = map[string]any{"m": map[any]any{1: 2}} }, []string{`args: cannot be sent as JSON`}, []string{"args"}},
		{"several at once", func(c *Config) { c.Cron, c.Template, c.Misfire = "x", "", "never" }, []string{`cron: "x"`, "template: missing", `misfire: "never"`}, []string{"cron", "template", "misfire"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted a bad config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("error %v does not match model.ErrInvalid", err)
			}
			var fields []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ce *ConfigError
				if !errors.As(e, &ce) {
					t.Fatalf("%v is not a *ConfigError", e)
				}
				fields = append(fields, ce.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields %v, want %v", fields, tt.fields)
			}
		})
	}
}

func TestValidateDefaults(t *testing.T) {
	c := Config{Name: "a", Cron: "@hourly", Template: "t", Approval: &Approval{URL: "https://gate/ok"}, Throttle: &Throttle{MaxRunning: 1}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Timezone != "UTC" || c.Misfire != MisfireOnce || c.MisfireLimit != 100 || c.MisfireGrace != time.Second ||
		c.Overlap != OverlapAllow || c.Approval.Timeout != 10*time.Second || c.Throttle.WhenFull != ThrottleSkip || !c.IsEnabled() {
		t.Errorf("defaults not filled: %+v %+v %+v", c, *c.Approval, *c.Throttle)
	}
}

func TestValidateAllRefusesDuplicates(t *testing.T) {
	err := ValidateAll([]Config{valid(), valid(), {Name: "x"}})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`schedule "nightly-purge": name: used by another schedule`, `schedules[2]: schedule "x": cron: "": missing`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not contain %q", err, w)
		}
	}
}

// TestConfigYAML reads the DESIGN §9 example plus the optional fields.
func TestConfigYAML(t *testing.T) {
	const doc = `
schedules:
  - name: nightly-purge
    cron: "0 2 * * *"
    timezone: Europe/Berlin
    template: purge
    args: {older_than: 720h, day: "${{ fire_time }}"}
    misfire: once
    overlap: allow
  - name: every-ten-seconds
    cron: "*/10 * * * * *"
    template: poll
    priority: 7
    enabled: false
    misfire: all
    misfire_limit: 5
    misfire_grace: 30s
    approval: {url: "http://gate:8080/ok", timeout: 3s}
    throttle: {max_running: 2, when_full: wait}
`
	var f struct {
		Schedules []Config `yaml:"schedules"`
	}
	if err := yaml.Unmarshal([]byte(doc), &f); err != nil {
		t.Fatal(err)
	}
	if err := ValidateAll(f.Schedules); err != nil {
		t.Fatal(err)
	}
	a, b := f.Schedules[0], f.Schedules[1]
	if a.Args["older_than"] != "720h" || a.Args["day"] != "${{ fire_time }}" || a.Timezone != "Europe/Berlin" {
		t.Errorf("first: %+v", a)
	}
	if b.IsEnabled() || b.Priority != 7 || b.MisfireLimit != 5 || b.MisfireGrace != 30*time.Second ||
		b.Approval.Timeout != 3*time.Second || b.Throttle.MaxRunning != 2 || b.Throttle.WhenFull != ThrottleWait {
		t.Errorf("second: %+v", b)
	}
}
