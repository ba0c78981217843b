package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/coverage"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

// Test users and their passwords.
const (
	operatorName = "olga"
	viewerName   = "victor"
	password     = "correct horse battery"
)

// Hostile values from the end-to-end suite's bad-input cases, stored as
// they could arrive from a host (the user id and local part are the host's)
// or a registry (evidence).
var (
	hostileScript = `<script>alert("dg")</script>`
	hostileQuotes = `O'Brien "the" <b>bold</b>`
	hostileRTL    = "rtl\u202eexe.txt"
	hostileLong   = strings.Repeat("n", 5000)
)

type fixture struct {
	ctx     context.Context
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	nc      *nats.Conn
	topo    broker.Topology
	store   *enforcer.Store
	relay   *enforcer.Relay
	console *Console
	srv     *httptest.Server
	holdID  string
}

var hashes = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return h
})

func testUsers() map[string]User {
	return map[string]User{
		operatorName: {Name: operatorName, Role: RoleOperator, hash: hashes()},
		viewerName:   {Name: viewerName, Role: RoleViewer, hash: hashes()},
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background()}
	f.pool, _ = testdb.New(t)
	f.js, f.nc, f.topo = testnats.Shared(t)
	log := testnats.Logger(t)
	reg := prometheus.NewRegistry()
	var err error
	ecfg := enforcer.Config{Pool: f.pool, JS: f.js, Topology: f.topo, Logger: log, Registerer: reg}
	if f.store, err = enforcer.NewStore(ecfg); err != nil {
		t.Fatal(err)
	}
	if f.relay, err = enforcer.NewRelay(ecfg); err != nil {
		t.Fatal(err)
	}
	prod, err := producer.New(producer.Config{Pool: f.pool, JS: f.js, Topology: f.topo, Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	f.console, err = New(Config{
		Addr: "127.0.0.1:0", Users: testUsers(), Pool: f.pool, Store: f.store, JS: f.js, Topology: f.topo,
		Enqueue: prod.EnqueueManual, DailyBudget: 1000, Logger: log, Registerer: reg,
		// RDAP serves .org only; .xyz has nothing.
		Coverage: &coverage.Sources{RDAP: func(_ context.Context, tld string) (bool, error) { return tld == "org", nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.console.Handler())
	t.Cleanup(f.srv.Close)
	f.seed(t)
	return f
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(f.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// seed fills the database with a small world: healthy, lapsed, held and
// hostile domains, a history for the chart, lookups, and one dead letter.
func (f *fixture) seed(t *testing.T) {
	t.Helper()
	now := time.Now().UTC()
	exp := now.AddDate(1, 0, 0)
	ev := func(provider string, statuses ...string) lifecycle.Evidence {
		return lifecycle.Evidence{Provider: provider, Statuses: statuses, ExpiresAt: &exp, Handle: "H-1", ObservedAt: now.Add(-time.Hour)}
	}
	hostileEv := lifecycle.Evidence{Provider: "rdap", Statuses: []string{hostileScript, hostileQuotes, hostileRTL}, Handle: hostileLong, ObservedAt: now.Add(-time.Hour)}
	for _, d := range []struct {
		name, phase string
		ev          lifecycle.Evidence
	}{
		{"ok.org", "active", ev("rdap", "active")},
		{"fast.org", "active", ev("fastly", "active")},
		{"gone.org", "released", ev("rdap")},
		{"held.org", "expired", ev("rdap", "client hold")},
		{"hostile.org", "grace", hostileEv},
	} {
		f.exec(t, `INSERT INTO domains (name, phase, evidence, last_checked_at, next_check_at, phase_since) VALUES ($1, $2, $3, $4, $5, $4)`,
			d.name, d.phase, d.ev, now.Add(-time.Hour), now.Add(24*time.Hour))
	}
	f.exec(t, `INSERT INTO domains (name) VALUES ('new.org')`)
	verifiedAt := now.AddDate(0, -2, 0)
	add := func(user, email, domain string, verified bool, reason string) {
		if verified {
			f.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES ($1, $2, $3, true, $4)`, user, email, domain, verifiedAt)
		} else {
			f.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at, unverified_at, unverify_reason, unverify_phase) VALUES ($1, $2, $3, false, $4, $5, $6, 'released')`,
				user, email, domain, verifiedAt, now.Add(-2*time.Hour), reason)
		}
	}
	add("u1", "ada@ok.org", "ok.org", true, "")
	add("u2", "bob@fast.org", "fast.org", true, "")
	add("u3", "cy@gone.org", "gone.org", false, "domain_released")
	add("u4", "new@new.org", "new.org", true, "")
	add("u5", "zed@corp.xyz", "corp.xyz", true, "")
	var held []lifecycle.Address
	for i := range 3 {
		e := fmt.Sprintf("h%d@held.org", i)
		add(fmt.Sprintf("uh%d", i), e, "held.org", true, "")
		held = append(held, lifecycle.Address{UserID: fmt.Sprintf("uh%d", i), Email: e, VerifiedAt: verifiedAt})
	}
	add(hostileScript, hostileScript+"@hostile.org", "hostile.org", true, "")
	add(hostileQuotes, `"`+hostileQuotes+`"@hostile.org`, "hostile.org", true, "")
	add("rtl", hostileRTL+"@hostile.org", "hostile.org", true, "")
	add(hostileLong, hostileLong+"@hostile.org", "hostile.org", true, "")

	f.holdID = "0190f1a2-0000-7000-8000-0000000000aa"
	obs := lifecycle.Observation{Domain: "held.org", Phase: lifecycle.PhaseExpired, Evidence: ev("rdap", "client hold")}
	f.exec(t, `INSERT INTO holds (id, domain, cause, reason, phase, previous_phase, observation, addresses, status, created_at)
		VALUES ($1, 'held.org', 'cap', 'domain_expired', 'expired', 'active', $2, $3, 'pending', $4)`, f.holdID, obs, held, now.Add(-26*time.Hour))

	// History for the chart: unverifications and lapses on a few days.
	for i, d := range []int{1, 1, 5, 30, 89, 120} {
		f.exec(t, `INSERT INTO audit_log (id, type, domain, email, data, created_at) VALUES ($1, 'audit.email.unverified', 'gone.org', $2, '{}', $3)`,
			fmt.Sprintf("0190f1a2-0000-7000-8000-%012d", i+1), fmt.Sprintf("x%d@gone.org", i), now.AddDate(0, 0, -d))
		f.exec(t, `INSERT INTO domain_observations (domain, phase, evidence, observed_at, applied, recorded_at, turned_lapsed, previous_phase)
			VALUES ('gone.org', 'released', '{}', $1, true, $1, true, 'active')`, now.AddDate(0, 0, -d))
	}
	f.exec(t, `INSERT INTO lookup_budget (hour, count) VALUES ($1, 7), ($2, 5), ($3, 100)`,
		now.Truncate(time.Hour), now.Add(-5*time.Hour).Truncate(time.Hour), now.Add(-30*time.Hour).Truncate(time.Hour))

	// A dead letter: a host event the intake could not apply.
	payload := `{"specversion":"1.0","id":"dl-1","source":"host","type":"io.domainguard.accounts.email.verified","datacontenttype":"application/json","data":{"user_id":"u9","email":"z@ok.org","verified_at":"2026-01-02T03:04:05Z"}}`
	dl := schemas.DeadLetter{Stream: schemas.StreamAccounts, Consumer: broker.ConsumerIntake, Subject: schemas.SubjectEmailVerified,
		Sequence: 41, Payload: []byte(payload), Error: "database unavailable <b>x</b>", Deliveries: 20, At: now.Add(-time.Hour)}
	body, _ := json.Marshal(dl)
	if _, err := f.js.Publish(f.ctx, f.topo.Namespace.DeadLetterSubject(schemas.StreamAccounts), body); err != nil {
		t.Fatal(err)
	}
}

// streamCount counts the messages of a stream.
func (f *fixture) streamCount(t *testing.T, name string) uint64 {
	t.Helper()
	s, err := f.js.Stream(f.ctx, f.topo.Namespace.Stream(name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
