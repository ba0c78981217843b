package enforcer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// change is one domains.changed event on its way through enforceChanges:
// the input, what the database holds for its domain, what lifecycle
// decided, and what was done.
type change struct {
	msgID    string
	ch       schemas.DomainChanged
	obs      lifecycle.Observation
	obsAt    time.Time
	evidence []byte // obs.Evidence encoded

	// Read by openChanges.
	dup                  bool
	row                  domainRow
	verified, unverified []lifecycle.Address

	// Set by decide.
	d      lifecycle.Decision
	turned bool // counts toward the breaker (lifecycle.Decision.BreakerCounts)

	// Set by applyDecisions.
	holdCause     string
	paused        *schemas.EnforcementPaused
	unverifiedNow []unverifiedRow
	out           Outcome
}

// enforceChanges applies changed events in tx, set-based: each step runs
// one statement (or one batch) for all the events it concerns, so a group
// of many events costs about as many round trips as one. One domain's
// events apply in the order given: its first event goes in the first
// round, its second in the second, and so on; a round reads what the
// previous one wrote. A failure fails the whole call (the caller isolates
// events with savepoints). While the enforcer publishes directly
// (Store.direct), the audit events go to the outbox as outbox batches,
// returned for the caller to publish once tx commits.
func (s *Store) enforceChanges(ctx context.Context, tx pgx.Tx, items []ChangeItem) ([]Outcome, []outboxBatch, error) {
	now := s.cfg.Clock.Now().UTC()
	var batches *[]outboxBatch
	if s.direct.Load() != nil {
		batches = &[]outboxBatch{}
	}
	var rounds [][]*change
	seen := map[string]int{}
	all := make([]*change, len(items))
	for i, it := range items {
		c, err := newChange(it)
		if err != nil {
			return nil, nil, err
		}
		all[i] = c
		r := seen[c.ch.Domain]
		seen[c.ch.Domain]++
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], c)
	}
	for _, round := range rounds {
		if err := s.enforceRound(ctx, tx, round, now, batches); err != nil {
			return nil, nil, err
		}
	}
	outs := make([]Outcome, len(all))
	for i, c := range all {
		outs[i] = c.out
	}
	if batches == nil {
		return outs, nil, nil
	}
	return outs, *batches, nil
}

func newChange(it ChangeItem) (*change, error) {
	obs := it.Change.Observation()
	obs.Evidence = obs.Evidence.Clean() // a NUL would fail the jsonb insert on every redelivery
	evidence, err := json.Marshal(obs.Evidence)
	if err != nil {
		return nil, fmt.Errorf("encode evidence of %s: %w", it.Change.Domain, err)
	}
	return &change{msgID: it.MsgID, ch: it.Change, obs: obs, obsAt: obs.Evidence.ObservedAt.UTC(), evidence: evidence}, nil
}

// enforceRound applies changes of distinct domains: open them (record the
// message ids, lock the domains, load the addresses), decide each, then
// apply the decisions segment by segment (batches: see queueAudit).
func (s *Store) enforceRound(ctx context.Context, tx pgx.Tx, cs []*change, now time.Time, batches *[]outboxBatch) error {
	breakerOpen, err := openChanges(ctx, tx, cs, now)
	if err != nil {
		return err
	}
	var live []*change
	for _, c := range cs {
		if c.dup {
			c.out = Outcome{Result: ResultDuplicate}
			continue
		}
		s.decide(c)
		live = append(live, c)
	}
	for _, seg := range s.segments(live) {
		if breakerOpen, err = s.applyDecisions(ctx, tx, seg, breakerOpen, now, batches); err != nil {
			return err
		}
	}
	return nil
}

// decide asks lifecycle what the observation means for the domain.
func (s *Store) decide(c *change) {
	c.d = lifecycle.Decide(c.row.state(c.unverified), c.obs, c.verified, s.policy(c.ch.Domain))
	c.turned = c.d.Apply && c.d.BreakerCounts
}

// countsForBreaker reports whether c must be counted by the breaker on its
// own: the breaker recounts its window for it, which must see every change
// before it and none after.
func (s *Store) countsForBreaker(c *change) bool {
	return !s.cfg.DryRun && c.turned && s.cfg.BreakerPct < 100
}

// needsBreaker reports whether applying c depends on the breaker: it
// counts toward the breaker (an unverifying decision of any reason), or it
// would unverify without a hold.
func (s *Store) needsBreaker(c *change) bool {
	return !s.cfg.DryRun && (c.turned || (len(c.d.Unverify) > 0 && c.d.Hold == ""))
}

// segments cuts cs into runs applied together; a change the breaker counts
// is a run of its own (so the count is exact, change by change).
func (s *Store) segments(cs []*change) [][]*change {
	var out [][]*change
	start := 0
	for i, c := range cs {
		if !s.countsForBreaker(c) {
			continue
		}
		if i > start {
			out = append(out, cs[start:i])
		}
		out = append(out, cs[i:i+1])
		start = i + 1
	}
	if start < len(cs) {
		out = append(out, cs[start:])
	}
	return out
}

// applyDecisions carries out the decisions of cs: record every
// observation, consult the breaker when it matters, unverify (or hold) the
// addresses, and write the domain updates and the audit events — in two
// round trips when the breaker has no say (it was closed when the domains
// were locked and no change in cs is one it counts). It returns whether
// the breaker is open now (batches: see queueAudit).
func (s *Store) applyDecisions(ctx context.Context, tx pgx.Tx, cs []*change, breakerOpen bool, now time.Time, batches *[]outboxBatch) (bool, error) {
	writes := &pgx.Batch{}
	queueObservations(writes, cs, now)
	for _, c := range cs {
		c.holdCause = string(c.d.Hold)
	}
	if s.breakerHasSay(cs, breakerOpen) {
		// The breaker counts the observations: write them first.
		if err := sendBatch(ctx, tx, writes); err != nil {
			return false, fmt.Errorf("record observations: %w", err)
		}
		writes = &pgx.Batch{}
		var err error
		if breakerOpen, err = s.consultBreaker(ctx, tx, cs, now); err != nil {
			return false, err
		}
	}
	if err := s.unverifyDecided(ctx, tx, cs, now); err != nil {
		return false, err
	}
	if err := s.queueDomainUpdates(writes, cs, now); err != nil {
		return false, err
	}
	var evs []auditEvent
	for _, c := range cs {
		if !c.d.Apply {
			continue
		}
		ce, err := s.auditEvents(c, now)
		if err != nil {
			return false, err
		}
		if c.out.HoldID != "" && !s.cfg.DryRun {
			if err := queueHold(writes, c.out.HoldID, c.ch.Domain, c.holdCause, c.d.Reason, c.obs, c.row.phase, c.d.Unverify, c.msgID, now); err != nil {
				return false, err
			}
		}
		evs = append(evs, ce...)
	}
	if err := queueAudit(writes, evs, s.cfg.DryRun, now, batches); err != nil {
		return false, err
	}
	if err := sendBatch(ctx, tx, writes); err != nil {
		return false, fmt.Errorf("record changes: %w", err)
	}
	for _, c := range cs {
		s.logChange(c)
	}
	return breakerOpen, nil
}

// openChanges starts enforcing cs (distinct domains) in one round trip:
// record the message ids (a change whose id was seen before is a
// duplicate), create the missing domain rows, lock them in name order (as
// every enforcing transaction does, so replicas cannot deadlock), and load
// their addresses — by emails.domain, and for names under a private suffix
// by emails.watch_name (its own index; queued only when cs has such names);
// and read whether the breaker is open (without a lock: consultBreaker
// locks it when it matters).
func openChanges(ctx context.Context, tx pgx.Tx, cs []*change, now time.Time) (breakerOpen bool, err error) {
	ids := make([]string, len(cs))
	names := make([]string, len(cs))
	for i, c := range cs {
		ids[i], names[i] = c.msgID, c.ch.Domain
	}
	slices.Sort(names)
	private := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !domainname.IsWatchName(n) })
	b := &pgx.Batch{}
	b.Queue(`
INSERT INTO processed_messages (consumer, message_id, processed_at)
SELECT $1, id, $3 FROM unnest($2::text[]) AS t(id)
ON CONFLICT (consumer, message_id) DO NOTHING
RETURNING message_id`, consumerName, ids, now)
	// A row made here for a name under a private suffix is marked so, as
	// the producer marks it: the sweep checks it by DNS alone, free.
	privateSuffix := make([]bool, len(names))
	for i, n := range names {
		privateSuffix[i] = slices.Contains(private, n)
	}
	b.Queue(`
INSERT INTO domains (name, next_check_at, private_suffix) SELECT name, $2, ps FROM unnest($1::text[], $3::bool[]) AS t(name, ps)
ON CONFLICT (name) DO NOTHING`, names, now, privateSuffix)
	b.Queue(`
SELECT name, phase, evidence, observed_at, expiry_warned_for, released_since, check_failures
FROM domains WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`, names)
	b.Queue(`
SELECT domain, user_id, email, COALESCE(email_as_sent, ''), verified, verified_at FROM emails
WHERE domain = ANY($1::text[]) AND (verified OR (NOT verified AND unverify_reason IS NOT NULL))
ORDER BY domain, user_id, email`, names)
	if len(private) > 0 {
		b.Queue(`
SELECT watch_name, user_id, email, COALESCE(email_as_sent, ''), verified, verified_at FROM emails
WHERE watch_name = ANY($1::text[]) AND (verified OR (NOT verified AND unverify_reason IS NOT NULL))
ORDER BY watch_name, user_id, email`, private)
	}
	b.Queue(sqlBreakerOpen)
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	fresh := map[string]bool{}
	rows, err := br.Query()
	if err != nil {
		return false, fmt.Errorf("record messages: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return false, fmt.Errorf("record messages: %w", err)
		}
		fresh[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("record messages: %w", err)
	}
	for _, c := range cs {
		// The same id twice in one round: the first one is the event.
		c.dup = !fresh[c.msgID]
		delete(fresh, c.msgID)
	}
	if _, err := br.Exec(); err != nil {
		return false, fmt.Errorf("ensure domains: %w", err)
	}

	byDomain := make(map[string]*change, len(cs))
	for _, c := range cs {
		byDomain[c.ch.Domain] = c
	}
	if rows, err = br.Query(); err != nil {
		return false, fmt.Errorf("lock domains: %w", err)
	}
	for rows.Next() {
		var name string
		r, err := scanDomainRow(rows, &name)
		if err != nil {
			rows.Close()
			return false, err
		}
		if c := byDomain[name]; c != nil {
			c.row = r
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("lock domains: %w", err)
	}

	if err := loadAddresses(br, byDomain); err != nil {
		return false, err
	}
	if len(private) > 0 {
		if err := loadAddresses(br, byDomain); err != nil {
			return false, fmt.Errorf("by watch name: %w", err)
		}
	}
	if err := br.QueryRow().Scan(&breakerOpen); err != nil {
		return false, fmt.Errorf("read breaker: %w", err)
	}
	return breakerOpen, br.Close()
}

// loadAddresses reads the next batch result, (name, user_id, email,
// email_as_sent, verified, verified_at) rows, into the changes of their
// names.
func loadAddresses(br pgx.BatchResults, byDomain map[string]*change) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("load addresses: %w", err)
	}
	var (
		name string
		a    lifecycle.Address
		ok   bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &a.UserID, &a.Email, &a.EmailAsSent, &ok, &a.VerifiedAt}, func() error {
		c := byDomain[name]
		switch {
		case c == nil:
		case ok:
			c.verified = append(c.verified, a)
		default:
			c.unverified = append(c.unverified, a)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load addresses: %w", err)
	}
	return nil
}

// queueObservations queues one domain_observations row per change,
// applied or not.
func queueObservations(b *pgx.Batch, cs []*change, now time.Time) {
	n := len(cs)
	var (
		domains, phases, evidence, ids, prev = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		observedAt                           = make([]time.Time, n)
		applied, turned                      = make([]bool, n), make([]bool, n)
	)
	for i, c := range cs {
		domains[i], phases[i], evidence[i], ids[i], prev[i] = c.ch.Domain, string(c.obs.Phase), string(c.evidence), c.msgID, string(c.row.phase)
		observedAt[i], applied[i], turned[i] = c.obsAt, c.d.Apply, c.turned
	}
	b.Queue(`
INSERT INTO domain_observations (domain, phase, evidence, observed_at, applied, message_id, recorded_at, previous_phase, turned_lapsed)
SELECT domain, phase, evidence::jsonb, observed_at, applied, message_id, $9, previous_phase, turned
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bool[], $6::text[], $7::text[], $8::bool[])
     AS t(domain, phase, evidence, observed_at, applied, message_id, previous_phase, turned)`,
		domains, phases, evidence, observedAt, applied, ids, prev, turned, now)
}

// breakerHasSay reports whether applying cs depends on the breaker beyond
// its state when the domains were locked: some change needs it, and it was
// open then (a hold must not slip past a concurrent resume: it is locked)
// or a change is one it counts.
func (s *Store) breakerHasSay(cs []*change, breakerOpen bool) bool {
	needed, counted := false, false
	for _, c := range cs {
		needed = needed || s.needsBreaker(c)
		counted = counted || s.countsForBreaker(c)
	}
	return needed && (breakerOpen || counted)
}

// consultBreaker settles each change's hold cause: lifecycle's, or
// "breaker" for an unverification while the breaker is open. A change the
// breaker counts (alone in its segment) may trip it here. It returns
// whether the breaker is open.
func (s *Store) consultBreaker(ctx context.Context, tx pgx.Tx, cs []*change, now time.Time) (bool, error) {
	turned := false
	for _, c := range cs {
		turned = turned || (!s.cfg.DryRun && c.turned)
	}
	open, paused, err := s.breakerGate(ctx, tx, turned, now)
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if !s.needsBreaker(c) {
			continue
		}
		if c.turned {
			c.paused = paused
		}
		if open {
			c.d = c.d.HeldByBreaker()
			c.holdCause = string(c.d.Hold)
		}
	}
	return open, nil
}

// unverifyDecided unverifies, with one statement, the addresses of every
// change that unverifies now (not held, not a dry run), and sets each
// change's outcome.
func (s *Store) unverifyDecided(ctx context.Context, tx pgx.Tx, cs []*change, now time.Time) error {
	var reqs []unverifyRequest
	for ci, c := range cs {
		switch {
		case !c.d.Apply && c.obs.Phase == lifecycle.PhaseUnknown:
			c.out = Outcome{Result: ResultUnknown}
			continue
		case !c.d.Apply:
			c.out = Outcome{Result: ResultStale}
			continue
		}
		c.out = Outcome{Result: ResultApplied, Reason: c.d.Reason}
		if len(c.d.Unverify) == 0 {
			continue
		}
		switch {
		case c.holdCause != "":
			c.out.HoldID, c.out.HoldCause = s.eventID(c, "hold"), c.holdCause
		case s.cfg.DryRun:
			c.out.WouldUnverify = len(c.d.Unverify)
		default:
			for _, a := range c.d.Unverify {
				reqs = append(reqs, unverifyRequest{change: ci, addr: a, reason: c.d.Reason, phase: c.obs.Phase, observedAt: c.obsAt})
			}
		}
	}
	done, err := unverify(ctx, tx, reqs, now)
	if err != nil {
		return err
	}
	for _, r := range done {
		c := cs[r.change]
		c.unverifiedNow = append(c.unverifiedNow, r.unverifiedRow)
		c.out.Unverified++
	}
	return nil
}

// queueDomainUpdates queues, for the applied changes, one update of their
// domains rows (observation, next check) and the superseding of their
// pending holds (the newest applied observation governs; if it still
// unverifies, it is held anew — queued after this).
func (s *Store) queueDomainUpdates(b *pgx.Batch, cs []*change, now time.Time) error {
	var (
		names, phases, evidence []string
		handles                 []*string
		registered, expires     []*time.Time
		observed, next          []time.Time
		released, warn          []*time.Time
	)
	for _, c := range cs {
		if !c.d.Apply {
			continue
		}
		var releasedSince *time.Time
		if c.obs.Phase == lifecycle.PhaseReleased {
			rs := c.obsAt
			if c.row.phase == lifecycle.PhaseReleased && c.row.releasedSince != nil {
				rs = *c.row.releasedSince
			}
			releasedSince = &rs
		}
		ev := c.obs.Evidence
		names, phases, evidence = append(names, c.ch.Domain), append(phases, string(c.obs.Phase)), append(evidence, string(c.evidence))
		handles, registered, expires = append(handles, nullable(ev.Handle)), append(registered, ev.RegisteredAt), append(expires, ev.ExpiresAt)
		observed = append(observed, c.obsAt)
		next = append(next, lifecycle.NextCheck(c.ch.Domain, c.obs.Phase, &ev, releasedSince, now, s.schedule(), s.random))
		released, warn = append(released, releasedSince), append(warn, c.d.ExpiryToWarn)
	}
	if len(names) == 0 {
		return nil
	}
	b.Queue(`
UPDATE domains d SET
  phase = t.phase, evidence = t.evidence::jsonb, registered_at = t.registered_at, expires_at = t.expires_at,
  handle = t.handle, observed_at = t.observed_at,
  phase_since = CASE WHEN d.phase = t.phase AND d.phase_since IS NOT NULL THEN d.phase_since ELSE t.observed_at END,
  released_since = t.released_since,
  last_checked_at = GREATEST(d.last_checked_at, t.observed_at),
  next_check_at = t.next_check_at, check_failures = 0, unmonitored_since = NULL,
  expiry_warned_for = COALESCE(t.warn, d.expiry_warned_for)
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::timestamptz[],
            $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
     AS t(name, phase, evidence, registered_at, expires_at, handle, observed_at, released_since, next_check_at, warn)
WHERE d.name = t.name`,
		names, phases, evidence, registered, expires, handles, observed, released, next, warn)
	b.Queue(`
UPDATE holds SET status = 'superseded', decided_at = $2, decided_by = 'enforcer'
WHERE domain = ANY($1::text[]) AND status = 'pending'`, names, now)
	return nil
}

// eventID derives the id of an output of c from its message id, so
// reprocessing yields the same ids.
func (s *Store) eventID(c *change, parts ...string) string {
	return schemas.DerivedID(c.obsAt, append([]string{consumerName, c.msgID}, parts...)...)
}

// auditEvents builds the audit events of an applied change, in order:
// breaker paused, the domain events in Decide's order, held, and one
// audit.email.unverified per address unverified (or, in a dry run, that
// would have been).
func (s *Store) auditEvents(c *change, now time.Time) ([]auditEvent, error) {
	var evs []auditEvent
	add := func(kind, userID, email string, data schemas.Payload) error {
		parts := []string{kind}
		if email != "" {
			parts = append(parts, userID, email)
		}
		e, err := s.newAuditEvent(s.eventID(c, parts...), kind, c.ch.Domain, userID, email, now, data)
		if err != nil {
			return err
		}
		evs = append(evs, e)
		c.out.Events = append(c.out.Events, kind)
		return nil
	}
	if c.paused != nil {
		c.out.Paused = true
		if err := add(schemas.SubjectEnforcementPaused, "", "", *c.paused); err != nil {
			return nil, err
		}
	}
	base := schemas.DomainEvent{
		Domain:           c.ch.Domain,
		PreviousPhase:    c.row.phase,
		Phase:            c.obs.Phase,
		ExpiresAt:        c.obs.Evidence.ExpiresAt,
		Evidence:         c.obs.Evidence,
		PreviousEvidence: c.row.evidence,
		Addresses:        []schemas.Address{},
	}
	for _, kind := range c.d.Events {
		var err error
		switch string(kind) {
		case schemas.SubjectDomainChanged:
			err = add(schemas.SubjectDomainChanged, "", "", base)
		case schemas.SubjectDomainExpiring:
			e := base
			if c.d.ExpiryToWarn != nil {
				e.ExpiresAt = c.d.ExpiryToWarn
			}
			err = add(schemas.SubjectDomainExpiring, "", "", withAddresses(e, c.verified, nil))
		case schemas.SubjectDomainRestored:
			err = add(schemas.SubjectDomainRestored, "", "", withAddresses(base, c.unverified, nil))
		case schemas.SubjectDomainReregistered:
			err = add(schemas.SubjectDomainReregistered, "", "", withAddresses(base, c.unverified, c.unverifiedNow))
		case schemas.SubjectEnforcementHeld:
			err = add(schemas.SubjectEnforcementHeld, "", "", schemas.EnforcementHeld{
				HoldID: c.out.HoldID, Domain: c.ch.Domain, Cause: c.out.HoldCause, Reason: c.d.Reason, Phase: c.obs.Phase, Addresses: len(c.d.Unverify),
			})
		}
		if err != nil {
			return nil, err
		}
	}
	emailEvent := func(r unverifiedRow) error {
		return add(schemas.SubjectEmailUnverified, r.UserID, r.Email, schemas.EmailUnverified{
			UserID: r.UserID, Email: r.Email, EmailAsSent: r.EmailAsSent, Domain: c.ch.Domain, Reason: c.d.Reason, Phase: c.obs.Phase,
			PreviousPhase: c.row.phase, Evidence: c.obs.Evidence, UnverifiedAt: now,
		})
	}
	for _, r := range c.unverifiedNow {
		if err := emailEvent(r); err != nil {
			return nil, err
		}
	}
	if s.cfg.DryRun && c.out.HoldID == "" {
		for _, a := range c.d.Unverify {
			if err := emailEvent(unverifiedRow{a.UserID, a.Email, a.EmailAsSent}); err != nil {
				return nil, err
			}
		}
	}
	return evs, nil
}

// logChange logs what enforcing c did.
func (s *Store) logChange(c *change) {
	switch c.out.Result {
	case ResultUnknown:
	case ResultStale:
		s.cfg.Logger.Info("stale observation recorded, not applied", "domain", c.ch.Domain, "phase", c.obs.Phase,
			"observed_at", c.obsAt, "applied_observed_at", c.row.observedAt, "message_id", c.msgID)
	default:
		s.cfg.Logger.Info("observation applied", "domain", c.ch.Domain, "previous_phase", c.row.phase, "phase", c.obs.Phase,
			"reason", c.d.Reason, "unverified", c.out.Unverified, "would_unverify", c.out.WouldUnverify, "skipped", len(c.d.Skipped),
			"hold", c.out.HoldCause, "events", len(c.out.Events), "dry_run", s.cfg.DryRun, "message_id", c.msgID)
	}
}
