package postgres

import (
	"net/url"
	"regexp"
	"strings"
)

var keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns a database URL or keyword/value connection string with any
// password replaced by "REDACTED", for logs and error messages.
func Redact(connString string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "REDACTED"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") {
				q.Set(k, "REDACTED")
				u.RawQuery = q.Encode()
			}
		}
		return u.String()
	}
	return keywordPassword.ReplaceAllString(connString, "${1}REDACTED")
}
