package dsn

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"at in password", "postgres://u:hun@ter2PW@127.0.0.1:19999/db", "postgres://u:xxxxx@127.0.0.1:19999/db"},
		{"plain", "postgres://u:secret@db.example:5432/dpe?sslmode=disable", "postgres://u:xxxxx@db.example:5432/dpe?sslmode=disable"},
		{"escaped", "postgres://u:p%40ss%3Aw@h/db", "postgres://u:xxxxx@h/db"},
		{"colon in password", "postgresql://u:a:b:c@h/db", "postgresql://u:xxxxx@h/db"},
		{"no password", "postgres://u@h/db", "postgres://u@h/db"},
		{"no user", "postgres://h/db", "postgres://h/db"},
		{"password in query", "postgres://h/db?password=s3cret&user=u", "postgres://h/db?password=xxxxx&user=u"},
		{"sqlite", "sqlite:./dpe-data/dpe.db", "sqlite:./dpe-data/dpe.db"},
		{"key value", "host=h password=s3cret dbname=d", "host=h password=xxxxx dbname=d"},
		{"key value quoted", `host=h password='a b\'c@d' dbname=d`, "host=h password=xxxxx dbname=d"},
		{"key value spaced", "host = h password = s3cret", "host=h password=xxxxx"},
		{"unterminated quote", "host=h password='abc", "(unparsable DSN)"},
		{"no key", "s3cret", "(unparsable DSN)"},
		{"bad URL", "postgres://u:p@[::1/db", "(unparsable DSN)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.dsn); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.dsn, got, tc.want)
			}
		})
	}
}

// TestNormalizeURLKeepsPasswordWhole is finding 9 of issue 13: the driver
// cut the DSN at the first '@', took "ter2PW@127.0.0.1" for the host and
// quoted it in its connection error.
func TestNormalizeURLKeepsPasswordWhole(t *testing.T) {
	const dsn = "postgres://u:hun@ter2PW@127.0.0.1:19999/db"
	cfg, err := pgconn.ParseConfig(Normalize(dsn))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "127.0.0.1" || cfg.Port != 19999 || cfg.Password != "hun@ter2PW" || cfg.User != "u" {
		t.Fatalf("parsed host %q port %d user %q password %q, want 127.0.0.1 19999 u hun@ter2PW", cfg.Host, cfg.Port, cfg.User, cfg.Password)
	}
}

// FuzzRedact builds DSNs from a fuzzed user, password and host, both as
// URLs (written raw, as an operator types them) and as key=value strings,
// and checks that Redact never shows the password and that the driver,
// given the normalized URL, reads the same password as net/url.
func FuzzRedact(f *testing.F) {
	f.Add("u", "hun@ter2PW", "127.0.0.1:19999")
	f.Add("postgres", "p:a:s@s/w?x#y", "db.example")
	f.Add("u", "'quoted\\'", "h")
	f.Add("", "", "h")
	f.Add("u@v", "p%41", "[::1]:5432")
	f.Fuzz(func(t *testing.T, user, pass, host string) {
		raw := "postgres://" + user + ":" + pass + "@" + host + "/db"
		red := Redact(raw)
		u, err := url.Parse(raw)
		if err == nil && u.User != nil {
			p, _ := u.User.Password()
			if secret(p, raw, red) {
				t.Fatalf("Redact(%q) = %q shows the password %q", raw, red, p)
			}
			cfg, err := pgconn.ParseConfig(Normalize(raw))
			if err == nil && p != "" && cfg.Password != p {
				t.Fatalf("driver read password %q from %q, net/url %q", cfg.Password, Normalize(raw), p)
			}
		}
		// The same password in a key=value DSN, quoted as libpq wants.
		q := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pass) + "'"
		kv := "host=h user=u password=" + q + " dbname=d"
		red = Redact(kv)
		if secret(pass, kv, red) {
			t.Fatalf("Redact(%q) = %q shows the password %q", kv, red, pass)
		}
	})
}

// secret reports whether red shows the password p: p is long enough to
// tell, and red contains it although nothing of dsn but the password did.
func secret(p, dsn, red string) bool {
	if len(p) < 4 || strings.Contains("xxxxx(unparsable DSN)", p) {
		return false
	}
	rest := strings.Replace(dsn, p, "", 1)
	return strings.Contains(red, p) && !strings.Contains(rest, p) && !strings.Contains(url.PathEscape(rest), p) && !strings.Contains(url.QueryEscape(rest), p)
}
