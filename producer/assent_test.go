package producer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/schemas"
)

// The host's own form of an address is stored beside the normalised key
// (by intake and by import), and a newer verification in another form
// replaces it.
func TestAddressStoredAsSentBesideTheKey(t *testing.T) {
	e := newEnv(t, nil)
	e.runIntake(t)
	ctx := context.Background()
	v1 := t0.Add(-48 * time.Hour)
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "as-1", verified("u1", "Alice@BÜCHER.Example", v1)))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "as-2", verified("u2", "Bob@Mail.Example.COM.", v1)))
	testwait.For(t, 15*time.Second, "2 addresses", func() bool { return countRows(t, e.pool, `SELECT count(*) FROM emails`) == 2 })

	input := "user_id,email,verified_at\n" +
		"u3,Carol@Other.ORG,2024-01-02\n" +
		"u1,Alice@bücher.EXAMPLE,2024-01-01\n" // older than the event: not applied, its form neither
	if _, err := Import(ctx, e.pool, strings.NewReader(input), ImportOptions{Clock: clock.NewStub(t0)}); err != nil {
		t.Fatalf("Import: %v", err)
	}
	// A newer verification of u2 in another form: the stored form follows it.
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "as-3", verified("u2", "Bob@MAIL.example.com.", v1.Add(time.Hour))))
	testwait.For(t, 15*time.Second, "u2 verified again", func() bool {
		return countRows(t, e.pool, `SELECT count(*) FROM emails WHERE user_id = 'u2' AND verified_at > $1`, v1) == 1
	})

	for _, w := range []struct{ user, key, asSent, domain string }{
		{"u1", "Alice@xn--bcher-kva.example", "Alice@BÜCHER.Example", "xn--bcher-kva.example"},
		{"u2", "Bob@mail.example.com", "Bob@MAIL.example.com.", "example.com"},
		{"u3", "Carol@other.org", "Carol@Other.ORG", "other.org"},
	} {
		var asSent, domain string
		err := e.pool.QueryRow(ctx, `SELECT COALESCE(email_as_sent, '<null>'), domain FROM emails WHERE user_id = $1 AND email = $2`,
			w.user, w.key).Scan(&asSent, &domain)
		if err != nil {
			t.Errorf("%s: no address stored under the key %q: %v", w.user, w.key, err)
			continue
		}
		if asSent != w.asSent || domain != w.domain {
			t.Errorf("%s %q stored as sent %q on %s, want %q on %s", w.user, w.key, asSent, domain, w.asSent, w.domain)
		}
	}
}
