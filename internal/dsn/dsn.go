// Package dsn reads database DSNs the way dpe's drivers should: a URL
// re-encoded from its parsed form before it reaches a driver, and a
// password found from the parsed form when a DSN is shown.
package dsn

import (
	"net/url"
	"strings"
)

// Normalize returns a postgres:// DSN re-encoded from its parsed form.
// net/url takes the last '@' of the authority as the end of the user
// info, as RFC 3986 wants, while pgconn cuts at the first one: a password
// holding an unescaped '@' would reach the driver split in two, its tail
// taken for the host name and quoted in connection errors ("lookup
// ter2PW@host"). Re-encoding escapes that '@' (%40), so the driver sees
// the password whole. A DSN net/url cannot parse is returned unchanged for
// the driver to refuse.
func Normalize(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.String()
}

// Redact returns dsn with its password replaced by "xxxxx", for messages and
// logs. The password is found from the parsed DSN, never by searching for
// '@' or ':': a URL through net/url (which takes the last '@' as the end of
// the user info), a key=value DSN by its password key, which may be quoted
// and hold spaces and escapes. A DSN that parses as neither is replaced
// whole by a placeholder, since where its password ends cannot be known.
func Redact(dsn string) string {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return dsn
	case strings.Contains(dsn, "://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable DSN)"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	out, ok := redactKeyValue(dsn)
	if !ok {
		return "(unparsable DSN)"
	}
	return out
}

// redactKeyValue redacts the password of a libpq key=value DSN
// ("host=h password='a b\\'c' dbname=d"), following libpq's grammar:
// spaces around '=', values either bare (up to the next space) or single
// quoted with backslash escapes. ok is false when dsn does not follow it.
func redactKeyValue(dsn string) (string, bool) {
	var b strings.Builder
	s := dsn
	for {
		s = strings.TrimLeft(s, " \t\n\r\f\v")
		if s == "" {
			return strings.TrimSpace(b.String()), true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return "", false
		}
		key := strings.TrimSpace(s[:eq])
		if key == "" || strings.ContainsAny(key, " \t\n\r\f\v'\\") {
			return "", false
		}
		s = strings.TrimLeft(s[eq+1:], " \t\n\r\f\v")
		var val string
		if strings.HasPrefix(s, "'") {
			end := -1
			for i := 1; i < len(s); i++ {
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '\'' {
					end = i
					break
				}
			}
			if end < 0 {
				return "", false
			}
			val, s = s[:end+1], s[end+1:]
		} else {
			end := strings.IndexAny(s, " \t\n\r\f\v")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if key == "password" {
			val = "xxxxx"
		}
		b.WriteString(key + "=" + val + " ")
	}
}
