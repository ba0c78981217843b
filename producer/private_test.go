package producer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testwait"
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

// insertAddress stores a verified address as the owner, behind the
// producer's back (watch may be nil: no watch name).
func insertAddress(t *testing.T, e *env, user, email, domain string, watch any) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO emails (user_id, email, domain, verified, verified_at, watch_name)
		VALUES ($1, $2, $3, true, $4, $5)`, user, email, domain, t0.Add(-time.Hour), watch); err != nil {
		t.Fatal(err)
	}
}

// watchNameOf is the stored watch_name of the user's address ("" for NULL).
func watchNameOf(t *testing.T, e *env, user string) string {
	t.Helper()
	var w string
	if err := e.pool.QueryRow(context.Background(), `SELECT COALESCE(watch_name, '') FROM emails WHERE user_id = $1`, user).Scan(&w); err != nil {
		t.Fatal(err)
	}
	return w
}

// The watch_name backfill is keyed by the revision of the list in use: a
// restart with the revision the last backfill completed against scans
// nothing (addresses stored behind the producer's back, one under a
// private suffix without its name and one with a name that is not its
// own, are left as they are); another recorded revision computes every
// address's name again and records the one in use; an unknown revision
// runs at every start and is never recorded.
func TestPrivateNamesKeyedByRevision(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	insertAddress(t, e, "a", "a@acme.eu.org", "eu.org", nil)
	if changed, _, err := e.p.PrivateNames(ctx); err != nil || changed != 1 || watchNameOf(t, e, "a") != "acme.eu.org" {
		t.Fatalf("first start: PrivateNames = %d, %v, watch name %q; want 1 address filled", changed, err, watchNameOf(t, e, "a"))
	}

	insertAddress(t, e, "b", "b@foo.pp.ua", "pp.ua", nil)
	insertAddress(t, e, "c", "c@mail.example.com", "example.com", "stale.us.com")
	restarted := e.newProducer(t)
	if changed, _, err := restarted.PrivateNames(ctx); err != nil || changed != 0 {
		t.Fatalf("restart with the same list: PrivateNames = %d, %v; want no scan", changed, err)
	}
	if b, c := watchNameOf(t, e, "b"), watchNameOf(t, e, "c"); b != "" || c != "stale.us.com" {
		t.Fatalf("restart with the same list rescanned: watch names %q, %q", b, c)
	}

	if _, err := e.pool.Exec(ctx, `UPDATE backfills SET revision = 'another list' WHERE name = 'watch_name'`); err != nil {
		t.Fatal(err)
	}
	if changed, _, err := restarted.PrivateNames(ctx); err != nil || changed != 2 {
		t.Fatalf("restart after another list: PrivateNames = %d, %v; want 2 addresses changed", changed, err)
	}
	for user, want := range map[string]string{"a": "acme.eu.org", "b": "foo.pp.ua", "c": ""} {
		if got := watchNameOf(t, e, user); got != want {
			t.Errorf("after another list, %s's watch name is %q, want %q", user, got, want)
		}
	}
	var rev string
	var completed *time.Time
	if err := e.pool.QueryRow(ctx, `SELECT revision, completed_at FROM backfills WHERE name = 'watch_name'`).Scan(&rev, &completed); err != nil ||
		rev != restarted.watchRev || rev == "" || completed == nil || !completed.Equal(t0) {
		t.Fatalf("marker %q at %v (%v); want %q at %s", rev, completed, err, restarted.watchRev, t0)
	}

	unknown := e.newProducer(t)
	unknown.watchRev = ""
	insertAddress(t, e, "d", "d@x.foo.github.io", "github.io", nil)
	if changed, _, err := unknown.PrivateNames(ctx); err != nil || changed != 1 || watchNameOf(t, e, "d") != "foo.github.io" {
		t.Fatalf("unknown revision: PrivateNames = %d, %v, watch name %q; want the backfill run", changed, err, watchNameOf(t, e, "d"))
	}
	if n := countRows(t, e.pool, `SELECT count(*) FROM backfills WHERE name = 'watch_name' AND revision = $1`, restarted.watchRev); n != 1 {
		t.Fatal("an unknown revision was recorded")
	}
}

// The watch_name backfill never goes back to an older list: a replica
// whose revision is older than the recorded one (an old build restarting
// in a rolling upgrade) neither computes the names with its list nor
// records its revision, and says so naming both; a newer one computes them
// again and records its own; when either revision cannot be ordered the
// backfill runs, as before.
func TestPrivateNamesBackfillNeverGoesBack(t *testing.T) {
	rev := func(date string) string {
		return "publicsuffix.org's public_suffix_list.dat, git revision 63cb (" + date + "); watch-name rule 1"
	}
	older, newer := rev("2023-08-03T10:01:25Z"), rev("2026-02-06T07:36:33Z")
	for _, c := range []struct {
		name, marker, replica string
		recompute             bool
		recorded              string // the marker afterwards
	}{
		{"older replica, newer marker", newer, older, false, newer},
		{"newer replica, older marker", older, newer, true, newer},
		{"unparseable marker", "another list", older, true, older},
		{"unparseable replica", newer, "a list without a date; watch-name rule 1", true, "a list without a date; watch-name rule 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			ctx := context.Background()
			recordedAt := t0.Add(-time.Hour)
			if _, err := e.pool.Exec(ctx, `UPDATE backfills SET revision = $1, completed_at = $2 WHERE name = 'watch_name'`,
				c.marker, recordedAt); err != nil {
				t.Fatal(err)
			}
			insertAddress(t, e, "a", "a@acme.eu.org", "eu.org", nil)
			replica := e.newProducer(t)
			replica.watchRev = c.replica
			var logs bytes.Buffer
			replica.log = slog.New(slog.NewTextHandler(&logs, nil))

			changed, _, err := replica.PrivateNames(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ran := changed == 1 && watchNameOf(t, e, "a") == "acme.eu.org"; ran != c.recompute {
				t.Fatalf("PrivateNames changed %d addresses (watch name %q); want the backfill run: %v", changed, watchNameOf(t, e, "a"), c.recompute)
			}
			var got string
			var at time.Time
			if err := e.pool.QueryRow(ctx, `SELECT revision, completed_at FROM backfills WHERE name = 'watch_name'`).Scan(&got, &at); err != nil {
				t.Fatal(err)
			}
			if wantAt := map[bool]time.Time{false: recordedAt, true: t0}[c.recompute]; got != c.recorded || !at.Equal(wantAt) {
				t.Fatalf("marker %q at %s; want %q at %s", got, at, c.recorded, wantAt)
			}
			if warned := strings.Contains(logs.String(), "watch-name backfill skipped"); warned != !c.recompute ||
				warned && (!strings.Contains(logs.String(), older) || !strings.Contains(logs.String(), newer)) {
				t.Fatalf("log %q; want a warning naming both revisions only when skipped", logs.String())
			}
		})
	}
}

// The start-up passes do not hold up the first sweep: while the watch
// name backfill and the rekeying wait on address rows the test keeps
// locked, the sweeper enqueues every due domain; once the lock goes, both
// complete (the name added, the address under its normalised key).
func TestStartPassesBesideFirstSweep(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.WatchPrivateNames = true })
	ctx := context.Background()
	addDueDomains(t, e, 3)
	insertAddress(t, e, "a", "a@acme.eu.org", "eu.org", nil)
	insertAddress(t, e, "b", "b@example.com.", "example.com", nil)
	lock, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT 1 FROM emails WHERE user_id IN ('a', 'b') FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.p.RunSweeper(runCtx) }()
	t.Cleanup(func() { // before the env's cleanup closes the pool
		_ = lock.Rollback(context.Background())
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSweeper: %v", err)
		}
	})

	testwait.For(t, 15*time.Second, "the backfill and the rekeying waiting on the locked addresses", func() bool {
		return countRows(t, e.pool, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE emails%watch_name%'`) == 1 &&
			countRows(t, e.pool, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM emails WHERE user_id%FOR UPDATE%'`) == 1
	})
	testwait.For(t, 15*time.Second, "the first sweep", func() bool { return len(e.pendingChecks(t)) == 3 })
	if w := watchNameOf(t, e, "a"); w != "" {
		t.Fatalf("watch name %q written through the test's lock", w)
	}

	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, "the backfill and the rekeying", func() bool {
		return watchNameOf(t, e, "a") == "acme.eu.org" &&
			countRows(t, e.pool, `SELECT count(*) FROM domains WHERE name = 'acme.eu.org' AND private_suffix`) == 1 &&
			countRows(t, e.pool, `SELECT count(*) FROM emails WHERE user_id = 'b' AND email = 'b@example.com'`) == 1
	})
}
