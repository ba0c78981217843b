package producer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

// With DNS evidence on, an address under a private suffix gets a domains
// row of its own name (private_suffix, checked at once, free of the lookup
// budget) besides its registrable domain's; intake and import alike. With
// it off, only the registrable domain is watched, and watch_name is kept
// for the coverage report.
func TestPrivateSuffixNamesWatched(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("dns evidence %v", on), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.WatchPrivateNames = on })
			ctx := context.Background()
			m := &fakeMsg{subject: e.topo.Namespace.Subject(schemas.SubjectEmailVerified), stream: "ACCOUNTS", seq: 1, header: nats.Header{},
				data: hostEvent(t, "ev-1", verified("u1", "alice@Mail.Acme.US.com", t0.Add(-time.Hour)))}
			if s := e.deliver(ctx, m); s != broker.Acked {
				t.Fatalf("settled as %s", s)
			}
			var domain, watch string
			if err := e.pool.QueryRow(ctx, `SELECT domain, watch_name FROM emails WHERE user_id = 'u1'`).Scan(&domain, &watch); err != nil ||
				domain != "us.com" || watch != "acme.us.com" {
				t.Fatalf("stored domain %q, watch_name %q (%v)", domain, watch, err)
			}
			want := map[string]bool{"us.com": false}
			if on {
				want["acme.us.com"] = true
			}
			if got := domainRows(t, e); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("domains after intake %v, want %v", got, want)
			}
			pending := e.pendingChecks(t)
			if pending["us.com"] != 1 || (pending["acme.us.com"] == 1) != on {
				t.Fatalf("signup checks %v", pending)
			}
			var used int64
			if err := e.pool.QueryRow(ctx, `SELECT COALESCE(sum(count), 0) FROM lookup_budget`).Scan(&used); err != nil || used != 1 {
				t.Errorf("budget used %d (%v), want 1: the private name's DNS check is free", used, err)
			}

			csv := "user_id,email,verified_at\nu2,bob@foo.github.io,2026-01-01T00:00:00Z\nu3,carol@example.org,2026-01-01T00:00:00Z\n"
			if _, err := Import(ctx, e.pool, strings.NewReader(csv), ImportOptions{Clock: e.clk, WatchPrivateNames: on}); err != nil {
				t.Fatal(err)
			}
			want["github.io"], want["example.org"] = false, false
			if on {
				want["foo.github.io"] = true
			}
			if got := domainRows(t, e); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("domains after import %v, want %v", got, want)
			}
		})
	}
}

// domainRows maps every domains row to its private_suffix mark.
func domainRows(t *testing.T, e *env) map[string]bool {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT name, private_suffix FROM domains`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		var p bool
		if err := rows.Scan(&n, &p); err != nil {
			t.Fatal(err)
		}
		out[n] = p
	}
	return out
}

// The sweep checks private-suffix names without spending the budget, and
// PrivateNames fills watch_name of addresses stored without it and adds
// their names when DNS evidence is (turned) on.
func TestPrivateNamesSweepAndBackfill(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DailyBudget = 1; c.PageSize = 10; c.WatchPrivateNames = true })
	ctx := context.Background()
	at := t0.Add(-time.Hour)
	if _, err := e.pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES
		('a', 'a@acme.eu.org', 'eu.org', true, $1), ('b', 'b@x.acme.eu.org', 'eu.org', true, $1),
		('c', 'c@foo.pp.ua', 'pp.ua', true, $1), ('d', 'd@mail.example.com', 'example.com', true, $1)`, at); err != nil {
		t.Fatal(err)
	}
	backfilled, added, err := e.p.PrivateNames(ctx)
	if err != nil || backfilled != 3 || added != 2 {
		t.Fatalf("PrivateNames = %d, %d, %v; want 3 addresses, 2 names", backfilled, added, err)
	}
	if n := countRows(t, e.pool, `SELECT count(*) FROM emails WHERE watch_name = 'acme.eu.org'`); n != 2 {
		t.Fatalf("%d addresses watch acme.eu.org, want 2", n)
	}
	if again, added, err := e.p.PrivateNames(ctx); err != nil || again != 0 || added != 0 {
		t.Fatalf("second PrivateNames = %d, %d, %v; want nothing to do", again, added, err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, next_check_at) VALUES ('eu.org', $1), ('pp.ua', $1), ('example.com', $1)`, at); err != nil {
		t.Fatal(err)
	}
	res, err := e.p.Sweep(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pending := e.pendingChecks(t)
	if pending["acme.eu.org"] != 1 || pending["foo.pp.ua"] != 1 || res.Enqueued != 3 {
		t.Fatalf("sweep %+v, pending %v; want both private names and one paid check", res, pending)
	}
	var used int64
	if err := e.pool.QueryRow(ctx, `SELECT COALESCE(sum(count), 0) FROM lookup_budget`).Scan(&used); err != nil || used != 1 {
		t.Errorf("budget used %d (%v), want 1: private-suffix names are free", used, err)
	}
}
