// Package alert evaluates the server's alert rules and notifies receivers
// (DESIGN §7): a failed workflow instance, a standby group whose lease no
// copy holds for longer than a rule's `for`, a job type with queued jobs
// and no live processor for longer than `for`. One server at a time
// evaluates (the holder of the lease "server/alerts"); every alert and the
// delivery of its notifications live in the core database, so a server
// that takes over neither forgets an alert nor notifies it twice.
package alert

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// Defaults of the configuration.
const (
	DefaultEvery        = 10 * time.Second
	DefaultFor          = time.Minute
	DefaultMaxPerMinute = 10
	DefaultTimeout      = 5 * time.Second
	DefaultAttempts     = 5
	DefaultBackoff      = 2 * time.Second
	DefaultMaxBackoff   = time.Minute
	// Lookback is how far back the failure rule looks for failed
	// instances without an alert (an evaluator that was down for less
	// than this misses none); a failure alert stays firing that long.
	Lookback = time.Hour
)

// Config is the `alerts` section of the configuration file.
type Config struct {
	// Every is the evaluation interval (default 10s).
	Every time.Duration `yaml:"every" json:"every,omitempty"`
	// Retry bounds the attempts of one notification to one receiver.
	Retry     Retry      `yaml:"retry" json:"retry"`
	Receivers []Receiver `yaml:"receivers" json:"receivers,omitempty"`
	Rules     []Rule     `yaml:"rules" json:"rules,omitempty"`
}

// Retry is how a failed notification is retried: Attempts in all, the
// pauses growing from Backoff to MaxBackoff (jittered).
type Retry struct {
	Attempts   int           `yaml:"attempts" json:"attempts,omitempty"`
	Backoff    time.Duration `yaml:"backoff" json:"backoff,omitempty"`
	MaxBackoff time.Duration `yaml:"max_backoff" json:"max_backoff,omitempty"`
}

// Receiver is where notifications go: a webhook, or mail through SMTP.
type Receiver struct {
	Name string `yaml:"name" json:"name"`
	// Webhook is the URL a notification is POSTed to as JSON.
	Webhook string `yaml:"webhook" json:"webhook,omitempty"`
	// SecretFile or SecretEnv hold the key of an HMAC-SHA256 signature of
	// the body, sent as "X-DPE-Signature: sha256=<hex>".
	SecretFile string `yaml:"secret_file" json:"-"`
	SecretEnv  string `yaml:"secret_env" json:"-"`
	// Timeout bounds one call (default 5s).
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
	// SMTP sends mail instead of a webhook.
	SMTP *SMTP `yaml:"smtp" json:"smtp,omitempty"`

	secret []byte
}

// SMTP is a mail receiver (net/smtp: STARTTLS when the server offers it).
type SMTP struct {
	Addr     string   `yaml:"addr" json:"addr"` // host:port
	From     string   `yaml:"from" json:"from"`
	To       []string `yaml:"to" json:"to"`
	Username string   `yaml:"username" json:"username,omitempty"`
	// PasswordEnv names the variable holding the password (PLAIN auth,
	// only with Username).
	PasswordEnv string `yaml:"password_env" json:"-"`

	password string
}

// Rule is one alert rule.
type Rule struct {
	Name string          `yaml:"name" json:"name"`
	Kind model.AlertKind `yaml:"kind" json:"kind"`
	// Match: path.Match patterns of what the rule watches: template names
	// (workflow_failed), group lease names such as "trigger/*"
	// (group_inactive), job types (no_processor). None: everything.
	Match []string `yaml:"match" json:"match,omitempty"`
	// For is how long the condition must hold before the alert fires
	// (group_inactive, no_processor; default 1m).
	For time.Duration `yaml:"for" json:"for,omitempty"`
	// Receivers by name (none: every receiver).
	Receivers []string `yaml:"receivers" json:"receivers,omitempty"`
	// MaxPerMinute caps the calls of this rule to one receiver in any
	// minute (default 10); the alerts beyond it go out together in the
	// last allowed call.
	MaxPerMinute int `yaml:"max_per_minute" json:"max_per_minute,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Validate fills the defaults and refuses every bad field, naming it
// ("alerts.rules[1].for: ..."); errors are joined. It reads the webhook
// secrets, so a missing file or variable is refused at start.
func (c *Config) Validate(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, model.Invalid("alerts."+field, format, a...))
	}
	if c.Every == 0 {
		c.Every = DefaultEvery
	}
	if c.Every < 100*time.Millisecond || c.Every > time.Hour {
		bad("every", "want between 100ms and 1h, got %s", c.Every)
	}
	if c.Retry.Attempts == 0 {
		c.Retry.Attempts = DefaultAttempts
	}
	if c.Retry.Attempts < 1 || c.Retry.Attempts > 100 {
		bad("retry.attempts", "want 1 to 100, got %d", c.Retry.Attempts)
	}
	if c.Retry.Backoff == 0 {
		c.Retry.Backoff = DefaultBackoff
	}
	if c.Retry.MaxBackoff == 0 {
		c.Retry.MaxBackoff = max(DefaultMaxBackoff, c.Retry.Backoff)
	}
	if c.Retry.Backoff < 0 || c.Retry.MaxBackoff < c.Retry.Backoff {
		bad("retry", "want 0 < backoff <= max_backoff, got %s and %s", c.Retry.Backoff, c.Retry.MaxBackoff)
	}
	receivers := map[string]bool{}
	for i := range c.Receivers {
		r := &c.Receivers[i]
		field := fmt.Sprintf("receivers[%d]", i)
		if !nameRE.MatchString(r.Name) {
			bad(field+".name", "%q is not a name: want 1 to 64 of [a-z0-9._-]", r.Name)
		} else if receivers[r.Name] {
			bad(field+".name", "%q is used by another receiver", r.Name)
		}
		receivers[r.Name] = true
		if err := r.validate(getenv); err != nil {
			errs = append(errs, prefix(field, err))
		}
	}
	rules := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		field := fmt.Sprintf("rules[%d]", i)
		if !nameRE.MatchString(r.Name) {
			bad(field+".name", "%q is not a name: want 1 to 64 of [a-z0-9._-]", r.Name)
		} else if rules[r.Name] {
			bad(field+".name", "%q is used by another rule", r.Name)
		}
		rules[r.Name] = true
		switch r.Kind {
		case model.AlertWorkflowFailed:
			if r.For != 0 {
				bad(field+".for", "a failure alerts at once: remove for")
			}
		case model.AlertGroupInactive, model.AlertNoProcessor:
			if r.For == 0 {
				r.For = DefaultFor
			}
			if r.For < 0 || r.For > 24*time.Hour {
				bad(field+".for", "want between 0s and 24h, got %s", r.For)
			}
		default:
			bad(field+".kind", "%q is not a kind: want workflow_failed, group_inactive or no_processor", r.Kind)
		}
		for j, m := range r.Match {
			if _, err := path.Match(m, ""); err != nil || m == "" {
				bad(fmt.Sprintf("%s.match[%d]", field, j), "%q is not a pattern", m)
			}
		}
		if r.MaxPerMinute == 0 {
			r.MaxPerMinute = DefaultMaxPerMinute
		}
		if r.MaxPerMinute < 1 || r.MaxPerMinute > 600 {
			bad(field+".max_per_minute", "want 1 to 600, got %d", r.MaxPerMinute)
		}
		for j, n := range r.Receivers {
			if !receivers[n] {
				bad(fmt.Sprintf("%s.receivers[%d]", field, j), "%q is not a receiver (alerts.receivers)", n)
			}
		}
		if len(r.Receivers) == 0 {
			for _, rc := range c.Receivers {
				r.Receivers = append(r.Receivers, rc.Name)
			}
		}
	}
	if len(c.Rules) > 0 && len(c.Receivers) == 0 {
		bad("receivers", "rules need at least one receiver")
	}
	return errors.Join(errs...)
}

// validate checks one receiver and reads its secret.
func (r *Receiver) validate(getenv func(string) string) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, model.Invalid(field, format, a...))
	}
	switch {
	case r.Webhook == "" && r.SMTP == nil:
		bad("webhook", "give a webhook URL or smtp")
	case r.Webhook != "" && r.SMTP != nil:
		bad("webhook", "give a webhook URL or smtp, not both")
	case r.Webhook != "":
		u, err := url.Parse(r.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("webhook", "%q is not an http(s) URL", r.Webhook)
		}
	default:
		s := r.SMTP
		if _, _, err := splitHostPort(s.Addr); err != nil {
			bad("smtp.addr", "%q: want host:port", s.Addr)
		}
		if _, err := mail.ParseAddress(s.From); err != nil {
			bad("smtp.from", "%q is not a mail address", s.From)
		}
		if len(s.To) == 0 {
			bad("smtp.to", "give at least one address")
		}
		for i, to := range s.To {
			if _, err := mail.ParseAddress(to); err != nil {
				bad(fmt.Sprintf("smtp.to[%d]", i), "%q is not a mail address", to)
			}
		}
		if s.PasswordEnv != "" && s.Username == "" {
			bad("smtp.password_env", "needs smtp.username")
		}
		if s.PasswordEnv != "" {
			if s.password = getenv(s.PasswordEnv); s.password == "" {
				bad("smtp.password_env", "variable %s is empty or not set", s.PasswordEnv)
			}
		}
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.Timeout < 0 || r.Timeout > 5*time.Minute {
		bad("timeout", "want between 0s and 5m, got %s", r.Timeout)
	}
	switch {
	case r.SecretFile != "" && r.SecretEnv != "":
		bad("secret_file", "give secret_file or secret_env, not both")
	case r.SecretFile != "":
		b, err := os.ReadFile(r.SecretFile)
		if err != nil {
			bad("secret_file", "%v", err)
		} else if r.secret = []byte(strings.TrimSpace(string(b))); len(r.secret) == 0 {
			bad("secret_file", "%s is empty", r.SecretFile)
		}
	case r.SecretEnv != "":
		if r.secret = []byte(getenv(r.SecretEnv)); len(r.secret) == 0 {
			bad("secret_env", "variable %s is empty or not set", r.SecretEnv)
		}
	}
	if len(r.secret) > 0 && r.SMTP != nil {
		bad("secret_file", "a signature is for webhooks only")
	}
	return errors.Join(errs...)
}

// prefix puts field in front of the fields of the field errors in err.
func prefix(field string, err error) error {
	var out []error
	for _, e := range unjoin(err) {
		var fe *model.FieldError
		if errors.As(e, &fe) {
			out = append(out, model.Invalid("alerts."+field+"."+fe.Field, "%s", fe.Reason))
		} else {
			out = append(out, fmt.Errorf("alerts.%s: %w", field, e))
		}
	}
	return errors.Join(out...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// matches reports whether name matches one of the patterns (none: all).
func matches(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// receiver returns the receiver named n.
func (c *Config) receiver(n string) *Receiver {
	for i := range c.Receivers {
		if c.Receivers[i].Name == n {
			return &c.Receivers[i]
		}
	}
	return nil
}

// rule returns the rule named n.
func (c *Config) rule(n string) *Rule {
	for i := range c.Rules {
		if c.Rules[i].Name == n {
			return &c.Rules[i]
		}
	}
	return nil
}
