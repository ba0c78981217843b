package producer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

// RunIntake consumes host account events from ACCOUNTS until ctx ends,
// then lets the messages in flight finish and returns nil.
func (p *Producer) RunIntake(ctx context.Context) error {
	return p.cfg.Topology.Run(ctx, p.cfg.JS, p.intakeOptions(), p.handleIntake)
}

// intakeOptions are the intake consumer's options; OnSettled counts
// dead letters and transient failures.
func (p *Producer) intakeOptions() broker.ConsumeOptions {
	return broker.ConsumeOptions{
		Stream:  schemas.StreamAccounts,
		Durable: broker.ConsumerIntake,
		Workers: p.cfg.IntakeWorkers,
		Logger:  p.log,
		OnSettled: func(_ jetstream.Msg, s broker.Settlement, _ broker.Outcome) {
			switch s {
			case broker.DeadLettered:
				p.m.intakeDeadLettered.Inc()
			case broker.Redelivering, broker.Unsettled:
				p.m.intakeErrors.Inc()
			}
		},
	}
}

// intakeOutcome is what became of one intake message.
type intakeOutcome int

const (
	intakeApplied intakeOutcome = iota
	intakeDuplicate
	intakeIgnored
)

// handleIntake processes one message from ACCOUNTS. A malformed message is
// Permanent (dead-lettered to dlq.ACCOUNTS); a transient failure is Retry
// (redelivered, and dead-lettered on its last delivery). A message applied
// twice (a redelivery, also after a failed ack) changes nothing the second
// time: processed_messages absorbs it.
func (p *Producer) handleIntake(ctx context.Context, msg jetstream.Msg) broker.Outcome {
	outcome, err := p.applyIntake(ctx, msg)
	if err != nil {
		return broker.OutcomeOf(err)
	}
	switch outcome {
	case intakeApplied:
		p.m.intakeAccepted.Inc()
	case intakeDuplicate:
		p.m.intakeDuplicates.Inc()
	case intakeIgnored:
		p.m.intakeIgnored.Inc()
	}
	return broker.Done()
}

// applyIntake decodes and applies one message. Errors wrapping
// schemas.ErrInvalid mean the message can never be applied.
func (p *Producer) applyIntake(ctx context.Context, msg jetstream.Msg) (intakeOutcome, error) {
	switch p.cfg.Topology.Namespace.Strip(msg.Subject()) {
	case schemas.SubjectEmailVerified:
		ev, m, err := schemas.Decode[schemas.EmailVerified](msg.Data())
		if err != nil {
			return 0, err
		}
		addr, err := intakeAddress(m.UserID, m.Email)
		if err != nil {
			return 0, err
		}
		now := p.cfg.Clock.Now()
		if err := CheckVerifiedAt(m.VerifiedAt, now); err != nil {
			return 0, fmt.Errorf("%w: %w", schemas.ErrInvalid, err)
		}
		id, err := intakeMessageID(ev, msg)
		if err != nil {
			return 0, err
		}
		applied, firstSeen, err := p.storeVerified(ctx, id, addr, m.VerifiedAt.UTC(), verifiedEventTime(ev, m), now)
		if err != nil || !applied {
			return intakeDuplicate, err
		}
		for _, name := range firstSeen {
			p.enqueueSignup(ctx, name, name == addr.WatchName, now)
		}
		return intakeApplied, nil
	case schemas.SubjectEmailRemoved:
		ev, m, err := schemas.Decode[schemas.EmailRemoved](msg.Data())
		if err != nil {
			return 0, err
		}
		addr, err := intakeAddress(m.UserID, m.Email)
		if err != nil {
			return 0, err
		}
		id, err := intakeMessageID(ev, msg)
		if err != nil {
			return 0, err
		}
		removedAt, err := removedEventTime(ev, msg)
		if err != nil {
			return 0, err
		}
		applied, err := p.storeRemoved(ctx, id, addr, removedAt)
		if err != nil || !applied {
			return intakeDuplicate, err
		}
		return intakeApplied, nil
	default:
		p.log.Debug("intake: ignoring message on an unhandled subject", "subject", msg.Subject())
		return intakeIgnored, nil
	}
}

// intakeAddress normalises the address and marks every problem as invalid
// input (domainname errors are already clear about the reason).
func intakeAddress(userID, email string) (Address, error) {
	addr, err := NormalizeAddress(userID, email)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %w", schemas.ErrInvalid, err)
	}
	return addr, nil
}

// intakeMessageID identifies a host event across redeliveries: the
// CloudEvent id (with its source: ids are unique per source), from the
// structured envelope or, in binary mode, from the ce-id and ce-source
// headers (the same event sent both ways is one event); else the
// Nats-Msg-Id the host published with, else the stream position.
func intakeMessageID(ev schemas.Event, msg jetstream.Msg) (string, error) {
	if ev.ID != "" {
		return "ce:" + ev.Source + " " + ev.ID, nil
	}
	if id := ceHeader(msg.Headers(), "id"); id != "" {
		return "ce:" + ceHeader(msg.Headers(), "source") + " " + id, nil
	}
	if h := msg.Headers().Get(schemas.HeaderMsgID); h != "" {
		return "msgid:" + h, nil
	}
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing makes it idempotent.
		return "", fmt.Errorf("%w: no message id and no stream metadata: %w", schemas.ErrInvalid, err)
	}
	return "seq:" + meta.Stream + "/" + strconv.FormatUint(meta.Sequence.Stream, 10), nil
}

// ceHeader returns the binary-mode CloudEvents attribute attr from the
// ce-<attr> header (the NATS binding's lower case, or canonical case).
func ceHeader(h nats.Header, attr string) string {
	if v := h.Get("ce-" + attr); v != "" {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(h.Get("Ce-" + strings.ToUpper(attr[:1]) + attr[1:]))
}

// verifiedEventTime orders a verified event against removals of the same
// address: its CloudEvent time, or verified_at for a bare JSON event.
func verifiedEventTime(ev schemas.Event, m schemas.EmailVerified) time.Time {
	if !ev.Time.IsZero() {
		return ev.Time.UTC()
	}
	return m.VerifiedAt.UTC()
}

// removedEventTime orders a removal: its CloudEvent time, or for a bare JSON
// event the time ACCOUNTS stored it.
func removedEventTime(ev schemas.Event, msg jetstream.Msg) (time.Time, error) {
	if !ev.Time.IsZero() {
		return ev.Time.UTC(), nil
	}
	meta, err := msg.Metadata()
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: removal without a time and without stream metadata: %w", schemas.ErrInvalid, err)
	}
	return meta.Timestamp.UTC(), nil
}

// lockAddress serialises, until tx ends, every intake transaction on one
// address (user_id, email): a removal and a verification of the same
// address handled by two workers (or two producers) at once apply one
// after the other, never interleaved.
func lockAddress(ctx context.Context, tx pgx.Tx, a Address) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 1414))`, a.UserID, a.Email); err != nil {
		return fmt.Errorf("lock address: %w", err)
	}
	return nil
}

// markProcessed records the message id in tx; false means it was applied
// before (a redelivery).
func markProcessed(ctx context.Context, tx pgx.Tx, id string) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, broker.ConsumerIntake, id)
	if err != nil {
		return false, fmt.Errorf("record message %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// applyOnce runs apply in one transaction that holds a's lock and records
// message id: false when the id was applied before (a redelivery), and
// apply is then not run.
func (p *Producer) applyOnce(ctx context.Context, id string, a Address, apply func(pgx.Tx) error) (applied bool, err error) {
	err = pgx.BeginFunc(ctx, p.cfg.Pool, func(tx pgx.Tx) error {
		if err := lockAddress(ctx, tx, a); err != nil {
			return err
		}
		if applied, err = markProcessed(ctx, tx, id); err != nil || !applied {
			return err
		}
		return apply(tx)
	})
	return applied, err
}

// storeVerified upserts the address and its domain (and, with
// WatchPrivateNames, its private-suffix name) in one transaction. It
// reports whether the message was new (not a redelivery) and which of
// those names were seen for the first time.
func (p *Producer) storeVerified(ctx context.Context, id string, a Address, verifiedAt, eventAt, now time.Time) (applied bool, firstSeen []string, err error) {
	applied, err = p.applyOnce(ctx, id, a, func(tx pgx.Tx) error {
		// Same rules as Import: a newer verified_at verifies (again); an
		// older one, or one not after domainguard's unverification, is stale.
		// A removal at or after the event's time (the tombstone) wins.
		if _, err := tx.Exec(ctx, `
			INSERT INTO emails AS e (user_id, email, domain, verified, verified_at, event_at, email_as_sent, watch_name)
			SELECT $1, $2, $3, true, $4, $5, $6, $7
			 WHERE NOT EXISTS (SELECT 1 FROM email_removals r
			                    WHERE r.user_id = $1 AND r.email = $2 AND r.removed_at >= $5)
			ON CONFLICT (user_id, email) DO UPDATE
			   SET domain = excluded.domain, verified = true, verified_at = excluded.verified_at,
			       event_at = excluded.event_at, email_as_sent = excluded.email_as_sent, watch_name = excluded.watch_name,
			       unverified_at = NULL, unverify_reason = NULL, unverify_phase = NULL, updated_at = now()
			 WHERE excluded.verified_at > e.verified_at
			   AND (e.unverified_at IS NULL OR excluded.verified_at > e.unverified_at)`,
			a.UserID, a.Email, a.Domain, verifiedAt, eventAt, a.AsSent, nullable(a.WatchName)); err != nil {
			return fmt.Errorf("upsert email: %w", err)
		}
		firstSeen = firstSeen[:0]
		for _, d := range p.domainsOf(a) {
			tag, err := tx.Exec(ctx, `INSERT INTO domains (name, next_check_at, private_suffix) VALUES ($1, $2, $3)
				ON CONFLICT (name) DO NOTHING`, d.name, now, d.privateSuffix)
			if err != nil {
				return fmt.Errorf("insert domain %s: %w", d.name, err)
			}
			if tag.RowsAffected() == 1 {
				firstSeen = append(firstSeen, d.name)
			}
		}
		return nil
	})
	if err != nil {
		return false, nil, fmt.Errorf("store verified address: %w", err)
	}
	return applied, firstSeen, nil
}

// watchedDomain is a domains row an address needs.
type watchedDomain struct {
	name          string
	privateSuffix bool // a name under a private PSL suffix, checked by DNS alone
}

// domainsOf returns the names watched for a: its registrable domain and,
// with WatchPrivateNames, its name under a private suffix.
func (p *Producer) domainsOf(a Address) []watchedDomain {
	out := []watchedDomain{{name: a.Domain}}
	if p.cfg.WatchPrivateNames && a.WatchName != "" {
		out = append(out, watchedDomain{name: a.WatchName, privateSuffix: true})
	}
	return out
}

// storeRemoved records the removal's tombstone and deletes the address,
// unless the address was verified by a newer event. Its domain stays: other
// addresses may use it, and an unused domain costs one lookup per interval
// at most.
func (p *Producer) storeRemoved(ctx context.Context, id string, a Address, removedAt time.Time) (applied bool, err error) {
	applied, err = p.applyOnce(ctx, id, a, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO email_removals AS r (user_id, email, removed_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, email) DO UPDATE
			   SET removed_at = excluded.removed_at, recorded_at = now()
			 WHERE excluded.removed_at > r.removed_at`, a.UserID, a.Email, removedAt); err != nil {
			return fmt.Errorf("record removal: %w", err)
		}
		_, err := deleteRemoved(ctx, tx, a.UserID, a.Email, removedAt)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store removed address: %w", err)
	}
	return applied, nil
}

// deleteRemoved deletes the address unless a host event after removedAt
// verified it: a removal at or after the address's last event (or of an
// address stored without one) wins. It is the removal rule of intake, also
// applied by the rekey pass to a tombstone that missed the address because
// it came in another form. It returns how many rows it deleted (0 or 1).
func deleteRemoved(ctx context.Context, tx pgx.Tx, userID, email string, removedAt time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM emails
		WHERE user_id = $1 AND email = $2 AND (event_at IS NULL OR event_at <= $3)`, userID, email, removedAt)
	if err != nil {
		return 0, fmt.Errorf("delete email: %w", err)
	}
	return tag.RowsAffected(), nil
}

// enqueueSignup publishes the immediate check of a first-seen domain and
// leases it; free (a private-suffix name: DNS alone) checks do not count
// against the lookup budget. Failing here loses nothing: the domain was
// inserted due now, so the next sweep enqueues it; and "already pending"
// is as good as done.
func (p *Producer) enqueueSignup(ctx context.Context, domain string, free bool, now time.Time) {
	msg, err := p.checkMsg(domain, schemas.CheckSignup, nil, now)
	if err != nil {
		p.log.Error("intake: build signup check; the sweep will enqueue it", "domain", domain, "error", err)
		return
	}
	published := true
	if _, err := p.cfg.JS.PublishMsg(ctx, msg); err != nil {
		if !broker.IsAlreadyPending(err) {
			p.log.Warn("intake: publish signup check failed; the sweep will enqueue it", "domain", domain, "error", err)
			return
		}
		published = p.replaceIfStale(msg)
	} else {
		p.m.signupChecks.Inc()
	}
	if _, err := p.cfg.Pool.Exec(ctx, leaseSQL, []string{domain}, []time.Time{p.leaseTime(now)}, now,
		now.Truncate(time.Hour), lookupCost(published, free)); err != nil {
		// The domain stays due: the sweep re-publishes, which the pending
		// check turns into "already pending".
		p.log.Warn("intake: lease after signup check failed", "domain", domain, "error", err)
	}
}
