package redact

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"testing"
)

// secret is in every input below where a credential goes.
const secret = "s3cr3t"

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://dg:s3cr3t@db:5432/dg?sslmode=disable", "postgres://REDACTED@db:5432/dg?sslmode=disable"},
		{"nats://s3cr3t@nats:4222", "nats://REDACTED@nats:4222"}, // a NATS token is a bare user
		{"https://user:s3cr3t@rdap.example/", "https://REDACTED@rdap.example/"},
		{"postgresql://h/db?password=s3cr3t&user=u", "postgresql://h/db?password=REDACTED&user=u"},
		{"https://api.example/v2/status?domain=a.com&client_id=s3cr3t", "https://api.example/v2/status?domain=a.com&client_id=REDACTED"},
		{"https://api.example/x?api_key=s3cr3t&Access_Token=s3cr3t", "https://api.example/x?api_key=REDACTED&Access_Token=REDACTED"},
		{"https://rdap.example/", "https://rdap.example/"},
		{"", ""},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWithoutCredentials(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://user:s3cr3t@rdap.example:8443/rdap/", "https://rdap.example:8443/rdap/"},
		{"https://s3cr3t@rdap.example/", "https://rdap.example/"},
		{"https://api.example/v2?domain=a.com&client_id=s3cr3t", "https://api.example/v2?domain=a.com"},
		{"https://rdap.example/", "https://rdap.example/"},
		{"not a url with https://u:s3cr3t@h/ inside", "not a url with https://REDACTED@h/ inside"},
	} {
		if got := WithoutCredentials(tc.in); got != tc.want {
			t.Errorf("WithoutCredentials(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestList(t *testing.T) {
	in := "com=https://u:s3cr3t@a.example/,net=https://b.example/, org = https://s3cr3t@c.example/"
	want := "com=https://REDACTED@a.example/,net=https://b.example/,org = https://REDACTED@c.example/"
	if got := List(in); got != want {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got := List("nats://u:s3cr3t@a:4222,nats://b:4222"); got != "nats://REDACTED@a:4222,nats://b:4222" {
		t.Errorf("List(NATS_URL) = %q", got)
	}
}

func TestConnString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:s3cr3t@h:5432/db", "postgres://REDACTED@h:5432/db"},
		{"host=h user=u password=s3cr3t dbname=d", "host=h user=u password=REDACTED dbname=d"},
		{"host=h password='se cr3t s3cr3t' dbname=d", "host=h password=REDACTED dbname=d"},
		{"host=h PASSWORD = s3cr3t", "host=h PASSWORD = REDACTED"},
	} {
		if got := ConnString(tc.in); got != tc.want {
			t.Errorf("ConnString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	for _, in := range []string{
		`Get "https://user:***@127.0.0.1:1/domain/a.net": dial tcp: connection refused`,
		`Get "https://s3cr3t@127.0.0.1:1/domain/a.net": EOF`,
		`rdap lookup: Get "https://api.example/v2/status?domain=a.org&client_id=s3cr3t": timeout`,
		`connect to nats nats://dg:s3cr3t@127.0.0.1:4222: no servers`,
		`cannot parse "host=h password=s3cr3t": bad`,
		`com=https://u:s3cr3t@a.example/`,
	} {
		got := Text(in)
		if strings.Contains(got, secret) || strings.Contains(got, "user:") || strings.Contains(got, "***") {
			t.Errorf("Text(%q) = %q: a credential is left", in, got)
		}
		if !strings.Contains(got, Mark) {
			t.Errorf("Text(%q) = %q: nothing marked", in, got)
		}
	}
	for _, keep := range []string{
		"rdap lookup a.com: HTTP 503 from https://rdap.example/",
		"password authentication failed for user \"dg\"",
		"https://api.example/v2/status?domain=a.org",
		"mailto:a@b.com and a@b.com",
	} {
		if got := Text(keep); got != keep {
			t.Errorf("Text(%q) = %q, want it unchanged", keep, got)
		}
	}
}

func TestError(t *testing.T) {
	// A real *url.Error from net/http: it already hides the password as
	// "***" but keeps the user name.
	_, err := http.Get("http://user:" + secret + "@127.0.0.1:1/")
	if err == nil {
		t.Fatal("want a connection error")
	}
	wrapped := fmt.Errorf("lookup: %w", err)
	got := Error(wrapped)
	if s := got.Error(); strings.Contains(s, "user") || strings.Contains(s, secret) || !strings.Contains(s, Mark) {
		t.Errorf("Error = %q", s)
	}
	var ue interface{ Timeout() bool }
	if !errors.As(got, &ue) {
		t.Errorf("Error hides the *url.Error from errors.As")
	}
	if Error(nil) != nil {
		t.Errorf("Error(nil) != nil")
	}
	plain := fs.ErrNotExist
	if Error(plain) != plain {
		t.Errorf("Error changed an error without credentials")
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example/services/T0/B0/s3cr3t?x=1": "https://hooks.example",
		"http://u:s3cr3t@127.0.0.1:8080/hook":             "http://127.0.0.1:8080",
		"not a url":                                       "",
	} {
		if got := Origin(in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
}
