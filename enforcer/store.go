package enforcer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
}

// NewStore checks cfg (JS is not needed) and returns a Store.
func NewStore(cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
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

const (
	sqlEnsureDomain = `INSERT INTO domains (name, next_check_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`
	sqlLockDomain   = `
SELECT phase, evidence, observed_at, expiry_warned_for, released_since, check_failures
FROM domains WHERE name = $1 FOR UPDATE`
	sqlAddresses = `
SELECT user_id, email, verified, verified_at FROM emails
WHERE domain = $1 AND (verified OR (NOT verified AND unverify_reason IS NOT NULL))
ORDER BY user_id, email`
	sqlRecordMessage = `
INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES ($1, $2, $3)
ON CONFLICT (consumer, message_id) DO NOTHING`
)

// lockDomain creates the domains row if missing and locks it for the rest of
// tx: concurrent replicas enforce one domain one event at a time.
func lockDomain(ctx context.Context, tx pgx.Tx, name string, now time.Time) (domainRow, error) {
	if _, err := tx.Exec(ctx, sqlEnsureDomain, name, now); err != nil {
		return domainRow{}, fmt.Errorf("ensure domain %s: %w", name, err)
	}
	return scanDomainRow(tx.QueryRow(ctx, sqlLockDomain, name), name)
}

// openChange starts enforcing one message in one round trip: record the
// message id (dup reports a message seen before), create and lock the
// domain row, and load its addresses.
func openChange(ctx context.Context, tx pgx.Tx, msgID, domain string, now time.Time) (dup bool, row domainRow, verified, unverified []lifecycle.Address, err error) {
	b := &pgx.Batch{}
	b.Queue(sqlRecordMessage, consumerName, msgID, now)
	b.Queue(sqlEnsureDomain, domain, now)
	b.Queue(sqlLockDomain, domain)
	b.Queue(sqlAddresses, domain)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	tag, err := br.Exec()
	if err != nil {
		return false, row, nil, nil, fmt.Errorf("record message: %w", err)
	}
	dup = tag.RowsAffected() == 0
	if _, err := br.Exec(); err != nil {
		return false, row, nil, nil, fmt.Errorf("ensure domain %s: %w", domain, err)
	}
	if row, err = scanDomainRow(br.QueryRow(), domain); err != nil {
		return false, row, nil, nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return false, row, nil, nil, fmt.Errorf("load addresses of %s: %w", domain, err)
	}
	verified, unverified, err = scanAddresses(rows, domain)
	if err != nil {
		return false, row, nil, nil, err
	}
	return dup, row, verified, unverified, br.Close()
}

func scanDomainRow(q pgx.Row, name string) (domainRow, error) {
	var (
		r        domainRow
		phase    string
		evidence []byte
	)
	if err := q.Scan(&phase, &evidence, &r.observedAt, &r.warnedExpiry, &r.releasedSince, &r.checkFailures); err != nil {
		return domainRow{}, fmt.Errorf("lock domain %s: %w", name, err)
	}
	r.phase = lifecycle.Phase(phase)
	if len(evidence) > 0 && string(evidence) != "null" {
		var ev lifecycle.Evidence
		if err := json.Unmarshal(evidence, &ev); err != nil {
			return domainRow{}, fmt.Errorf("domain %s: stored evidence: %w", name, err)
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

// scanAddresses splits the verified addresses of domain from those
// domainguard unverified (unverify_reason set, still unverified).
func scanAddresses(rows pgx.Rows, domain string) (verified, unverified []lifecycle.Address, err error) {
	defer rows.Close()
	for rows.Next() {
		var (
			a  lifecycle.Address
			ok bool
		)
		if err := rows.Scan(&a.UserID, &a.Email, &ok, &a.VerifiedAt); err != nil {
			return nil, nil, fmt.Errorf("load addresses of %s: %w", domain, err)
		}
		if ok {
			verified = append(verified, a)
		} else {
			unverified = append(unverified, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load addresses of %s: %w", domain, err)
	}
	return verified, unverified, nil
}

// unverifiedRow is one address an UPDATE actually unverified.
type unverifiedRow struct{ UserID, Email string }

// unverify sets verified=false on the given addresses that are still
// verified and were verified no later than observedAt (a re-verification
// racing with this transaction wins), returning those it changed.
func unverify(ctx context.Context, tx pgx.Tx, addrs []lifecycle.Address, reason lifecycle.Reason, phase lifecycle.Phase, observedAt, now time.Time) ([]unverifiedRow, error) {
	var out []unverifiedRow
	for start := 0; start < len(addrs); start += writeChunk {
		chunk := addrs[start:min(start+writeChunk, len(addrs))]
		users := make([]string, len(chunk))
		emails := make([]string, len(chunk))
		for i, a := range chunk {
			users[i], emails[i] = a.UserID, a.Email
		}
		rows, err := tx.Query(ctx, `
UPDATE emails e
SET verified = false, unverified_at = $3, unverify_reason = $4, unverify_phase = $5, updated_at = $3
FROM unnest($1::text[], $2::text[]) AS t(user_id, email)
WHERE e.user_id = t.user_id AND e.email = t.email AND e.verified AND e.verified_at <= $6
RETURNING e.user_id, e.email`, users, emails, now, string(reason), string(phase), observedAt)
		if err != nil {
			return nil, fmt.Errorf("unverify: %w", err)
		}
		for rows.Next() {
			var r unverifiedRow
			if err := rows.Scan(&r.UserID, &r.Email); err != nil {
				rows.Close()
				return nil, fmt.Errorf("unverify: %w", err)
			}
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
