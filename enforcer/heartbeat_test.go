package enforcer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

func TestHeartbeatsBatchUpdateAndIgnoreOlder(t *testing.T) {
	f := newFixture(t, nil)
	f.activate("hb1.com", t0.Add(-48*time.Hour))
	f.activate("hb2.com", t0.Add(-48*time.Hour))
	f.activate("hb3.com", t0.Add(-48*time.Hour))
	f.exec(`UPDATE domains SET check_failures = 2 WHERE name = 'hb1.com'`)
	res, err := f.store.ApplyHeartbeats(f.ctx, []schemas.DomainChecked{
		{Domain: "hb1.com", Phase: lifecycle.PhaseActive, ObservedAt: t0},
		{Domain: "hb1.com", Phase: lifecycle.PhaseActive, ObservedAt: t0.Add(-time.Minute)},    // older duplicate in the batch
		{Domain: "hb2.com", Phase: lifecycle.PhaseActive, ObservedAt: t0.Add(-72 * time.Hour)}, // older than last check
		{Domain: "hb3.com", Phase: lifecycle.PhaseUnknown, ObservedAt: t0, Failed: true},
		{Domain: "nobody.com", Phase: lifecycle.PhaseActive, ObservedAt: t0}, // not tracked
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 1 || res.Failed != 1 || res.Stale != 3 {
		t.Fatalf("result %+v, want 1 checked, 1 failed, 3 stale", res)
	}
	var (
		last     time.Time
		next     time.Time
		failures int
	)
	if err := f.pool.QueryRow(f.ctx, `SELECT last_checked_at, next_check_at, check_failures FROM domains WHERE name = 'hb1.com'`).Scan(&last, &next, &failures); err != nil {
		t.Fatal(err)
	}
	if !last.Equal(t0) || failures != 0 || !next.After(t0.Add(24*time.Hour)) {
		t.Errorf("hb1: last %s next %s failures %d", last, next, failures)
	}
	if err := f.pool.QueryRow(f.ctx, `SELECT last_checked_at FROM domains WHERE name = 'hb2.com'`).Scan(&last); err != nil || !last.Equal(t0.Add(-48*time.Hour)) {
		t.Errorf("hb2 moved back to %s (%v)", last, err)
	}
	if err := f.pool.QueryRow(f.ctx, `SELECT last_checked_at, next_check_at, check_failures FROM domains WHERE name = 'hb3.com'`).Scan(&last, &next, &failures); err != nil {
		t.Fatal(err)
	}
	if !last.Equal(t0.Add(-48*time.Hour)) || failures != 1 || next.After(t0.Add(3*time.Hour)) {
		t.Errorf("hb3 (failed): last %s next %s failures %d; want unchanged last, 1 failure, retry within hours", last, next, failures)
	}
}

func TestUnmonitoredHeartbeatChecksWeeklyAndAChangeClearsIt(t *testing.T) {
	f := newFixture(t, nil)
	f.exec(`INSERT INTO domains (name, next_check_at) VALUES ('none.zz', now())`)
	res, err := f.store.ApplyHeartbeats(f.ctx, []schemas.DomainChecked{
		{Domain: "none.zz", Phase: lifecycle.PhaseUnknown, ObservedAt: t0, Unmonitored: true, Detail: "no source"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unmonitored != 1 || res.Checked != 0 || res.Failed != 0 || res.Stale != 0 {
		t.Fatalf("result %+v, want 1 unmonitored", res)
	}
	var (
		last, next, since *time.Time
		failures          int
	)
	read := func() {
		t.Helper()
		if err := f.pool.QueryRow(f.ctx, `SELECT last_checked_at, next_check_at, unmonitored_since, check_failures FROM domains WHERE name = 'none.zz'`).
			Scan(&last, &next, &since, &failures); err != nil {
			t.Fatal(err)
		}
	}
	read()
	// Not "never checked" (the sweep's first pass), retried in about a week.
	if last == nil || !last.Equal(t0) || since == nil || !since.Equal(t0) || failures != 0 ||
		next.Before(t0.Add(6*24*time.Hour)) || next.After(t0.Add(8*24*time.Hour)) {
		t.Fatalf("unmonitored: last %v next %v since %v failures %d", last, next, since, failures)
	}
	// A second one keeps the first time; a covered heartbeat clears it.
	if _, err := f.store.ApplyHeartbeats(f.ctx, []schemas.DomainChecked{{Domain: "none.zz", Phase: lifecycle.PhaseUnknown, ObservedAt: t0.Add(time.Hour), Unmonitored: true}}); err != nil {
		t.Fatal(err)
	}
	read()
	if !since.Equal(t0) {
		t.Fatalf("unmonitored_since moved to %v", since)
	}
	if _, err := f.store.ApplyHeartbeats(f.ctx, []schemas.DomainChecked{{Domain: "none.zz", Phase: lifecycle.PhaseUnknown, ObservedAt: t0.Add(2 * time.Hour), Failed: true}}); err != nil {
		t.Fatal(err)
	}
	read()
	if since == nil {
		t.Fatal("a failed lookup cleared unmonitored_since")
	}
	if _, err := f.store.ApplyHeartbeats(f.ctx, []schemas.DomainChecked{{Domain: "none.zz", Phase: lifecycle.PhaseActive, ObservedAt: t0.Add(3 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	read()
	if since != nil {
		t.Fatalf("a covered heartbeat kept unmonitored_since %v", since)
	}
}

func TestStatusShowsDNSEvidenceAndUnmonitored(t *testing.T) {
	f := newFixture(t, nil)
	f.exec(`INSERT INTO domains (name, next_check_at, unmonitored_since, evidence, phase) VALUES ('dns.eu', now(), $1, $2, 'active')`, t0,
		`{"provider":"dns","observed_at":"2026-03-01T12:00:00Z","dns":{"delegated":true,"rcode":"NOERROR","nameservers":["ns1.host.example"],"mx_known":true,"mx":["mx.host.example"],"soa_serial":7,"soa_mname":"ns1.host.example"}}`)
	rep, err := f.store.Status(f.ctx, "dns.eu")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"delegated (NOERROR) to [ns1.host.example]", "MX [mx.host.example]", "SOA ns1.host.example serial 7", "unmonitored"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestStatusReportsEmailAndDomain(t *testing.T) {
	f := newFixture(t, nil)
	f.addEmails("stat.com", 2, t0.Add(-48*time.Hour))
	f.activate("stat.com", t0.Add(-time.Hour))
	f.observe("stat.com", lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0, reg, "H-stat.com", nil))

	rep, err := f.store.Status(f.ctx, "U0@stat.com")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "email" || len(rep.Emails) != 1 || rep.Emails[0].Verified || rep.Emails[0].UnverifyReason != "domain_expired" {
		t.Fatalf("email report %+v", rep)
	}
	if rep.Domain == nil || rep.Domain.Phase != lifecycle.PhaseExpired || rep.Domain.UnverifiedCount != 2 {
		t.Fatalf("email report domain %+v", rep.Domain)
	}
	types := map[string]bool{}
	for _, a := range rep.Audit {
		types[a.Type] = true
		if a.Email != "" && a.Email != "u0@stat.com" {
			t.Errorf("email report lists another address's event: %+v", a)
		}
	}
	if !types[schemas.SubjectEmailUnverified] || !types[schemas.SubjectDomainChanged] {
		t.Errorf("email report audit types %v", types)
	}

	rep, err = f.store.Status(f.ctx, "mail.stat.com")
	if err != nil || rep.Kind != "domain" || rep.Domain.Name != "stat.com" || len(rep.Emails) != 2 || len(rep.Observations) != 2 {
		t.Fatalf("domain report %+v %v", rep, err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "expired") || !strings.Contains(text.String(), "UNVERIFIED") {
		t.Errorf("text report:\n%s", text.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
	if _, err := f.store.Status(f.ctx, "nothing.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown domain: %v, want ErrNotFound", err)
	}
}

// status EMAIL finds an address in any form of its domain (U-label,
// A-label, upper case, trailing dot), and the audit events written under
// the key of before (domain part only lower-cased) still.
func TestStatusFindsAnAddressInAnotherForm(t *testing.T) {
	f := newFixture(t, nil)
	f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at, email_as_sent) VALUES ('z', $1, 'xn--bcher-kva.de', true, $2, 'Zoe@Bücher.de')`,
		domainname.StoredEmail("Zoe@Bücher.de"), t0.Add(-48*time.Hour))
	f.exec(`INSERT INTO audit_log (id, type, domain, user_id, email, data) VALUES
		('0190a7d5-0000-7000-8000-0000000000e1', 'audit.email.unverified', 'xn--bcher-kva.de', 'z', 'Zoe@bücher.de', '{}')`)
	for _, q := range []string{"Zoe@xn--bcher-kva.de", "Zoe@BÜCHER.DE", "Zoe@bücher.de.", "Zoe@XN--BCHER-KVA.DE."} {
		rep, err := f.store.Status(f.ctx, q)
		if err != nil || len(rep.Emails) != 1 || rep.Emails[0].EmailAsSent != "Zoe@Bücher.de" {
			t.Errorf("status %q: %+v, %v; want the address sent as Zoe@Bücher.de", q, rep.Emails, err)
			continue
		}
		if len(rep.Audit) != 1 {
			t.Errorf("status %q: audit %+v, want the event written under the key of before", q, rep.Audit)
		}
	}
	// A row still under the older key (not yet rekeyed) is found in any
	// form too.
	f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES ('m', 'max@müller.de.', 'xn--mller-kva.de', true, $1)`,
		t0.Add(-48*time.Hour))
	for _, q := range []string{"max@müller.de.", "max@xn--mller-kva.de", "max@MÜLLER.de"} {
		if rep, err := f.store.Status(f.ctx, q); err != nil || len(rep.Emails) != 1 || rep.Emails[0].Email != "max@müller.de." {
			t.Errorf("status %q: %+v, %v; want the row under the older key", q, rep.Emails, err)
		}
	}
}

// An address under a private PSL suffix (acme.github.io) is watched through
// github.io, which never lapses with it: status says it is not covered.
func TestStatusMarksPrivateSuffixAddressesNotCovered(t *testing.T) {
	f := newFixture(t, nil)
	f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES ('p', 'me@acme.github.io', 'github.io', true, $1),
		('q', 'me@github.io', 'github.io', true, $1)`, t0.Add(-time.Hour))
	rep, err := f.store.Status(f.ctx, "me@acme.github.io")
	if err != nil || len(rep.Emails) != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if e := rep.Emails[0]; e.Covered || !strings.Contains(e.NotCoveredWhy, "github.io") {
		t.Fatalf("private-suffix address reported %+v", e)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "NOT COVERED") {
		t.Errorf("text report:\n%s", text.String())
	}
	if rep, err := f.store.Status(f.ctx, "me@github.io"); err != nil || len(rep.Emails) != 1 || !rep.Emails[0].Covered {
		t.Fatalf("github.io's own address: %+v %v", rep, err)
	}

	// With DNS evidence its own name is watched: covered, and status says
	// how. A watched name that is unmonitored does not cover it.
	f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at, watch_name) VALUES
		('r', 'me@pages.github.io', 'github.io', true, $1, 'pages.github.io'),
		('s', 'me@dark.github.io', 'github.io', true, $1, 'dark.github.io')`, t0.Add(-time.Hour))
	f.exec(`INSERT INTO domains (name, phase, private_suffix) VALUES ('pages.github.io', 'active', true)`)
	f.exec(`INSERT INTO domains (name, phase, private_suffix, unmonitored_since) VALUES ('dark.github.io', 'unknown', true, $1)`, t0)
	rep, err = f.store.Status(f.ctx, "me@pages.github.io")
	if err != nil || len(rep.Emails) != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if e := rep.Emails[0]; !e.Covered || e.WatchName != "pages.github.io" || e.WatchPhase != "active" {
		t.Fatalf("watched private-suffix address reported %+v", e)
	}
	text.Reset()
	if err := rep.WriteText(&text); err != nil || strings.Contains(text.String(), "NOT COVERED") ||
		!strings.Contains(text.String(), "pages.github.io (under the private suffix github.io) is watched through DNS evidence") {
		t.Errorf("text report:\n%s", text.String())
	}
	if rep, err := f.store.Status(f.ctx, "me@dark.github.io"); err != nil || len(rep.Emails) != 1 || rep.Emails[0].Covered {
		t.Fatalf("unmonitored watch name: %+v %v", rep, err)
	}
	// status NAME of a watched name shows its own row and its addresses.
	rep, err = f.store.Status(f.ctx, "pages.github.io")
	if err != nil || rep.Domain == nil || rep.Domain.Name != "pages.github.io" || !rep.Domain.Known || rep.Domain.VerifiedCount != 1 ||
		len(rep.Emails) != 1 || rep.Emails[0].Email != "me@pages.github.io" {
		t.Fatalf("status of a watched name: %+v %v", rep, err)
	}
}

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.MaxUnverifyPerDomain != 50 || c.BreakerPct != 5 || c.BreakerMinDomains != 20 || c.BreakerWindow != time.Hour ||
		c.RecheckInterval != 720*time.Hour || c.Batch != DefaultBatch || c.Group != DefaultGroup || c.RelayInterval != time.Second || c.Source != DefaultSource {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err == nil {
		t.Error("config without a pool validated")
	}
	if !c.protectedSet()["gmail.com"] {
		t.Error("gmail.com is not protected by default")
	}
}

func TestMetricsCountEventsAndUnverified(t *testing.T) {
	registry := prometheus.NewRegistry()
	f := newFixture(t, func(c *Config) { c.Registerer = registry })
	f.addEmails("m.com", 2, t0.Add(-48*time.Hour))
	f.activate("m.com", t0.Add(-time.Hour))
	ch := schemas.DomainChanged{Domain: "m.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseExpired, Evidence: evidence(t0, reg, "H-m.com", nil)}
	for range 2 {
		if _, err := f.enforce("m-1", ch); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(f.store.metrics.events.WithLabelValues(ResultApplied)); got != 2 { // activate + expired
		t.Errorf("applied = %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.store.metrics.events.WithLabelValues(ResultDuplicate)); got != 1 {
		t.Errorf("duplicate = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.store.metrics.unverified.WithLabelValues(string(lifecycle.ReasonExpired))); got != 2 {
		t.Errorf("unverified{domain_expired} = %v, want 2", got)
	}
	// A relay built on the same registry shares the collectors.
	r, err := NewRelay(Config{Pool: f.pool, JS: nopJS{}, Registerer: registry})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RefreshGauges(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"domainguard_enforcer_events_total", "domainguard_enforcer_emails_unverified_total",
		"domainguard_enforcer_holds_open", "domainguard_enforcer_breaker_open", "domainguard_enforcer_outbox_lag_seconds"} {
		if got, err := testutil.GatherAndCount(registry, n); err != nil || got == 0 {
			t.Errorf("metric %s not gathered (%d series, %v)", n, got, err)
		}
	}
	if got := testutil.ToFloat64(r.metrics.outboxLag); got <= 0 {
		t.Errorf("outbox lag = %v with unsent rows, want > 0", got)
	}
}

// nopJS satisfies jetstream.JetStream for relays that never publish.
type nopJS struct{ jetstream.JetStream }

func (nopJS) Stream(context.Context, string) (jetstream.Stream, error) {
	return nil, jetstream.ErrStreamNotFound
}

// A failed lookup's reason is stored and shown by status (text and JSON),
// and kept after a later success, with its time.
func TestStatusShowsLastLookupError(t *testing.T) {
	f := newFixture(t, nil)
	f.activate("offline.com", t0.Add(-48*time.Hour))
	const reason = "rdap bootstrap: dial tcp: lookup data.iana.org: no such host"
	if _, err := f.store.ApplyHeartbeats(f.ctx, []schemas.DomainChecked{
		{Domain: "offline.com", Phase: lifecycle.PhaseUnknown, ObservedAt: t0.Add(-time.Hour), Failed: true, Detail: reason},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ApplyHeartbeats(f.ctx, []schemas.DomainChecked{
		{Domain: "offline.com", Phase: lifecycle.PhaseActive, ObservedAt: t0},
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := f.store.Status(f.ctx, "offline.com")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Domain == nil || rep.Domain.LastError != reason || rep.Domain.LastErrorAt == nil || !rep.Domain.LastErrorAt.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("status domain %+v, want the last lookup error and its time", rep.Domain)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "last lookup error") || !strings.Contains(text.String(), "no such host") {
		t.Errorf("status text lacks the last lookup error:\n%s", text.String())
	}
}
