package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/domainguard/domainguard/schemas"
)

func TestReplayTarget(t *testing.T) {
	topo := Topology{Namespace: schemas.Namespace{Prefix: "p"}}.WithDefaults()
	check := []byte(`{"domain":"example.com","reason":"manual","requested_at":"2026-01-02T03:04:05Z"}`)
	removal := []byte(`{"user_id":"victim","email":"victim@example.com"}`)
	letter := func(stream, subject string, payload []byte) schemas.DeadLetter {
		return schemas.DeadLetter{Stream: stream, Subject: subject, Payload: payload, Error: "x", At: time.Now()}
	}
	ok := []struct {
		dlq    string
		dl     schemas.DeadLetter
		target string
	}{
		{"p.dlq.DOMAIN_CHECKS", letter("DOMAIN_CHECKS", "domains.check.example.com", check), "p.domains.check.example.com"},
		{"p.dlq.ACCOUNTS", letter("ACCOUNTS", "accounts.email.removed", removal), "p.accounts.email.removed"},
	}
	for _, tc := range ok {
		got, err := topo.ReplayTarget(tc.dlq, tc.dl)
		if err != nil || got != tc.target {
			t.Errorf("ReplayTarget(%s, %s) = %q, %v; want %q", tc.dlq, tc.dl.Subject, got, err, tc.target)
		}
	}
	refused := []struct {
		name string
		dlq  string
		dl   schemas.DeadLetter
	}{
		{"letter for ACCOUNTS on the checker's DLQ subject", "p.dlq.DOMAIN_CHECKS", letter("ACCOUNTS", "accounts.email.removed", removal)},
		{"subject outside the stream", "p.dlq.DOMAIN_CHECKS", letter("DOMAIN_CHECKS", "accounts.email.removed", removal)},
		{"JetStream API", "p.dlq.DOMAIN_CHECKS", letter("DOMAIN_CHECKS", "$JS.API.STREAM.PURGE.AUDIT", nil)},
		{"inbox", "p.dlq.DOMAIN_CHECKS", letter("DOMAIN_CHECKS", "_INBOX.abc", nil)},
		{"wildcard", "p.dlq.DOMAIN_CHECKS", letter("DOMAIN_CHECKS", "domains.check.*", check)},
		{"audit stream", "p.dlq.AUDIT", letter("AUDIT", "audit.email.unverified", []byte(`{}`))},
		{"unknown stream", "p.dlq.X", letter("X", "x", nil)},
		{"payload domain differs", "p.dlq.DOMAIN_CHECKS", letter("DOMAIN_CHECKS", "domains.check.other.com", check)},
		{"payload invalid", "p.dlq.ACCOUNTS", letter("ACCOUNTS", "accounts.email.verified", removal)},
		{"no namespace", "dlq.DOMAIN_CHECKS", letter("DOMAIN_CHECKS", "domains.check.example.com", check)},
	}
	for _, tc := range refused {
		if got, err := topo.ReplayTarget(tc.dlq, tc.dl); err == nil || !errors.Is(err, schemas.ErrInvalid) {
			t.Errorf("%s: ReplayTarget = %q, %v; want a refusal wrapping ErrInvalid", tc.name, got, err)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"domains.check.>", "domains.check.example.com", true},
		{"domains.check.>", "domains.check", false},
		{"accounts.>", "accounts.email.removed", true},
		{"accounts.*", "accounts.email.removed", false},
		{"a.*.c", "a.b.c", true},
		{"a.b", "a.b", true},
		{"a.b", "a.b.c", false},
		{"dlq.>", "$JS.API.STREAM.PURGE.AUDIT", false},
	} {
		if got := SubjectMatches(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("SubjectMatches(%q, %q) = %v", tc.pattern, tc.subject, got)
		}
	}
}
