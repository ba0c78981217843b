// Package redact is the one place that hides credentials before text
// leaves a process: in logs, error messages, command output, evidence,
// database rows and events. Credentials reach domainguard only in its
// environment (or flags): passwords and tokens inside URLs (userinfo, or
// query parameters such as password= or client_id=), PostgreSQL
// keyword/value passwords, and whole secret variables (API keys), which
// callers never print at all.
//
// URL, List and ConnString render configured values for logs; Text and
// Error clean free text that may quote a URL (a *url.Error, a driver
// error); WithoutCredentials gives a URL fit to be stored (evidence names
// the server that answered, never how the process logged in to it);
// Origin keeps only scheme and host, for URLs that are secrets as a whole.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mark replaces every hidden value.
const Mark = "REDACTED"

// secretParam reports whether a query parameter named name carries a
// credential (password=, token=, api_key=, client_id=, sig=, ...).
func secretParam(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "client_id", "auth", "authorization", "sig", "signature", "code", "credential", "credentials":
		return true
	}
	for _, part := range []string{"pass", "pwd", "token", "secret", "key"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// URL returns raw with its whole userinfo replaced by Mark (a user name
// alone may be the credential: NATS tokens, API keys as basic-auth user)
// and the values of secret query parameters replaced by Mark. Text that
// does not parse as a URL goes through Text.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return Text(raw)
	}
	if u.User != nil {
		u.User = url.User(Mark)
	}
	u.RawQuery = redactQuery(u.RawQuery, false)
	return u.String()
}

// WithoutCredentials returns raw without userinfo and without secret
// query parameters: the address of a server, fit for evidence and
// stored rows. Text that does not parse as a URL goes through Text.
func WithoutCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return Text(raw)
	}
	u.User = nil
	u.RawQuery = redactQuery(u.RawQuery, true)
	return u.String()
}

// Origin returns only scheme://host[:port] of raw ("" when raw does not
// parse), for URLs whose path may itself be the secret, as a webhook's
// often is.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// redactQuery hides (or, with drop, removes) secret parameters, keeping
// the others in their order and encoding.
func redactQuery(raw string, drop bool) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	out := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); err == nil && secretParam(name) || err != nil && secretParam(k) {
			if drop {
				continue
			}
			p = k + "=" + Mark
		}
		out = append(out, p)
	}
	return strings.Join(out, "&")
}

// List redacts a comma-separated list whose items are URLs or name=URL
// pairs (NATS_URL, DOMAINGUARD_RDAP_OVERRIDES) with URL.
func List(v string) string {
	if v == "" {
		return v
	}
	items := strings.Split(v, ",")
	for i, item := range items {
		item = strings.TrimSpace(item)
		if name, rest, ok := strings.Cut(item, "="); ok && !strings.Contains(name, "://") && strings.Contains(rest, "://") {
			items[i] = name + "=" + URL(rest)
			continue
		}
		items[i] = URL(item)
	}
	return strings.Join(items, ",")
}

// keywordPassword is password=... in a keyword/value connection string,
// the value bare or single-quoted.
var keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// ConnString redacts a PostgreSQL connection string: a URL (with URL) or
// keyword/value pairs ("host=h password=p": the password is hidden).
func ConnString(v string) string {
	if strings.Contains(v, "://") {
		return URL(strings.TrimSpace(v))
	}
	return keywordPassword.ReplaceAllString(v, "${1}"+Mark)
}

var (
	// userinfoInText is "scheme://userinfo@" anywhere in text; the
	// userinfo stops at characters a URL in a message does not hold there.
	userinfoInText = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s"'<>\x60]+@`)
	// paramInText is a query parameter "name=value" after ? or &.
	paramInText = regexp.MustCompile(`([?&])([^=&\s"'<>#?]+)=([^&\s"'<>#]*)`)
)

// Text hides credentials of every URL quoted in s (userinfo, secret query
// parameters) and keyword/value passwords: for error messages and other
// free text built by libraries (net/http's *url.Error, pgx, nats).
func Text(s string) string {
	if strings.Contains(s, "://") {
		s = userinfoInText.ReplaceAllString(s, "${1}"+Mark+"@")
	}
	if strings.ContainsAny(s, "?&") {
		s = paramInText.ReplaceAllStringFunc(s, func(m string) string {
			sub := paramInText.FindStringSubmatch(m)
			if name, err := url.QueryUnescape(sub[2]); err == nil && secretParam(name) || secretParam(sub[2]) {
				return sub[1] + sub[2] + "=" + Mark
			}
			return m
		})
	}
	if strings.Contains(strings.ToLower(s), "password") {
		s = keywordPassword.ReplaceAllString(s, "${1}"+Mark)
	}
	return s
}

// Error returns err with its message passed through Text (nil for nil).
// errors.Is and errors.As still see err; printing the result never shows
// a credential err's message held.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if _, done := err.(*redactedError); done {
		return err
	}
	msg := err.Error()
	if clean := Text(msg); clean != msg {
		return &redactedError{err: err, msg: clean}
	}
	return err
}

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
