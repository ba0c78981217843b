package enforcer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
)

// consumerName is the processed_messages.consumer value of the enforcer.
const consumerName = "enforcer"

// Store is the enforcer's PostgreSQL side: the transactional enforcement
// path and the operator API (holds, breaker, status). It needs no NATS:
// events go to the outbox, which a running enforcer's relay publishes.
type Store struct {
	cfg       Config
	pool      *pgxpool.Pool
	metrics   *metrics
	protected map[string]bool

	rndMu sync.Mutex
	rnd   *rand.Rand

	// direct is set while Enforcer.Run's direct publisher runs: enforcing
	// transactions then write outbox batches and hand them to it.
	direct atomic.Pointer[directPublisher]
}

// NewStore checks cfg (JS is not needed) and returns a Store.
func NewStore(cfg Config) (*Store, error) {
	cfg, m, err := cfg.prepare("enforcer store", false)
	if err != nil {
		return nil, err
	}
	return newStore(cfg, m), nil
}

func newStore(cfg Config, m *metrics) *Store {
	return &Store{
		cfg:       cfg,
		pool:      cfg.Pool,
		metrics:   m,
		protected: cfg.protectedSet(),
		rnd:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x646f6d61696e)),
	}
}

func (s *Store) random() float64 {
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	return s.rnd.Float64()
}

// Protected reports whether domain is on the built-in or configured
// protected list.
func (s *Store) Protected(domain string) bool { return s.protected[domain] }

func (s *Store) policy(domain string) lifecycle.Policy {
	return lifecycle.Policy{
		Strict:               s.cfg.Strict,
		MaxUnverifyPerDomain: s.cfg.MaxUnverifyPerDomain,
		Protected:            s.Protected(domain),
		ExpiryWarning:        s.cfg.ExpiryWarning,
	}
}

func (s *Store) schedule() lifecycle.ScheduleConfig {
	return lifecycle.ScheduleConfig{RecheckInterval: s.cfg.RecheckInterval}
}

// domainRow is the enforcer's view of a domains row.
type domainRow struct {
	phase         lifecycle.Phase
	evidence      *lifecycle.Evidence
	observedAt    *time.Time
	warnedExpiry  *time.Time
	releasedSince *time.Time
	checkFailures int
}

// lockDomain creates the domains row if missing and locks it for the rest of
// tx: concurrent replicas enforce one domain one event at a time.
func lockDomain(ctx context.Context, tx pgx.Tx, name string, now time.Time) (domainRow, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO domains (name, next_check_at, private_suffix) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, now, domainname.IsWatchName(name)); err != nil {
		return domainRow{}, fmt.Errorf("ensure domain %s: %w", name, err)
	}
	var got string
	r, err := scanDomainRow(tx.QueryRow(ctx, `SELECT `+domainRowColumns+` FROM domains WHERE name = $1 FOR UPDATE`, name), &got)
	if err != nil {
		return domainRow{}, fmt.Errorf("lock domain %s: %w", name, err)
	}
	return r, nil
}

// domainRowColumns are the columns scanDomainRow reads.
const domainRowColumns = `name, phase, evidence, observed_at, expiry_warned_for, released_since, check_failures`

// scanDomainRow reads domainRowColumns, the name into name.
func scanDomainRow(q pgx.Row, name *string) (domainRow, error) {
	var (
		r        domainRow
		phase    string
		evidence []byte
	)
	if err := q.Scan(name, &phase, &evidence, &r.observedAt, &r.warnedExpiry, &r.releasedSince, &r.checkFailures); err != nil {
		return domainRow{}, fmt.Errorf("read domain: %w", err)
	}
	r.phase = lifecycle.Phase(phase)
	if len(evidence) > 0 && string(evidence) != "null" {
		var ev lifecycle.Evidence
		if err := json.Unmarshal(evidence, &ev); err != nil {
			return domainRow{}, fmt.Errorf("domain %s: stored evidence: %w", *name, err)
		}
		r.evidence = &ev
	}
	return r, nil
}

// state turns the row and the addresses domainguard unverified into the
// input of lifecycle.Decide.
func (r domainRow) state(unverified []lifecycle.Address) lifecycle.DomainState {
	st := lifecycle.DomainState{
		Phase:        r.phase,
		Evidence:     r.evidence,
		WarnedExpiry: r.warnedExpiry,
		Unverified:   unverified,
	}
	if r.observedAt != nil {
		st.ObservedAt = *r.observedAt
	}
	return st
}

// unverifiedRow is one address an UPDATE actually unverified.
// EmailAsSent is the host's form of the address ("" if not recorded).
type unverifiedRow struct{ UserID, Email, EmailAsSent string }

// unverifyRequest asks to unverify one address for change number change
// of a caller's list.
type unverifyRequest struct {
	change     int
	addr       lifecycle.Address
	reason     lifecycle.Reason
	phase      lifecycle.Phase
	observedAt time.Time
}

// unverifyResult is an address unverifyRequest.change's request unverified.
type unverifyResult struct {
	change int
	unverifiedRow
}

// unverify sets verified=false on the requested addresses that are still
// verified and were verified no later than their observedAt (a
// re-verification racing with this transaction wins), returning those it
// changed, with one statement per writeChunk addresses.
func unverify(ctx context.Context, tx pgx.Tx, reqs []unverifyRequest, now time.Time) ([]unverifyResult, error) {
	var out []unverifyResult
	for start := 0; start < len(reqs); start += writeChunk {
		chunk := reqs[start:min(start+writeChunk, len(reqs))]
		n := len(chunk)
		changes := make([]int32, n)
		users, emails, reasons, phases := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		observed := make([]time.Time, n)
		for i, r := range chunk {
			changes[i], users[i], emails[i], reasons[i], phases[i], observed[i] = int32(r.change), r.addr.UserID, r.addr.Email, string(r.reason), string(r.phase), r.observedAt
		}
		rows, err := tx.Query(ctx, `
UPDATE emails e
SET verified = false, unverified_at = $1, unverify_reason = t.reason, unverify_phase = t.phase, updated_at = $1
FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS t(change, user_id, email, reason, phase, observed_at)
WHERE e.user_id = t.user_id AND e.email = t.email AND e.verified AND e.verified_at <= t.observed_at
RETURNING t.change, e.user_id, e.email, COALESCE(e.email_as_sent, '')`, now, changes, users, emails, reasons, phases, observed)
		if err != nil {
			return nil, fmt.Errorf("unverify: %w", err)
		}
		for rows.Next() {
			var (
				r      unverifyResult
				change int32
			)
			if err := rows.Scan(&change, &r.UserID, &r.Email, &r.EmailAsSent); err != nil {
				rows.Close()
				return nil, fmt.Errorf("unverify: %w", err)
			}
			r.change = int(change)
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("unverify: %w", err)
		}
	}
	return out, nil
}

// ErrNotFound is returned by the operator API for an unknown hold, email or
// domain.
var ErrNotFound = errors.New("not found")

// handOff gives the outbox batches of a committed transaction to the direct
// publisher. Without one (it stopped meanwhile) their batch rows stay
// unsent and the relay publishes them.
func (s *Store) handOff(batches []outboxBatch) {
	d := s.direct.Load()
	if d == nil || len(batches) == 0 {
		return
	}
	select {
	case d.queue <- batches:
	case <-d.done:
	}
}
