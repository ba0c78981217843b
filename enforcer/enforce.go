package enforcer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// maxEventAddresses bounds the address list of one audit.domain.* event so
// the event stays far below the NATS payload limit; audit.email.unverified
// events (one per address) are never truncated.
const maxEventAddresses = 2000

// Outcome says what enforcing one changed event did.
type Outcome struct {
	// Result is one of ResultApplied, ResultStale, ResultDuplicate,
	// ResultUnknown.
	Result string
	// Reason of the addresses unverified (or that would have been, or held).
	Reason lifecycle.Reason
	// Unverified counts addresses unverified now (0 in dry run).
	Unverified int
	// WouldUnverify counts addresses a dry run would have unverified.
	WouldUnverify int
	// HoldID is set when the change was held (cause cap, protected or breaker).
	HoldID    string
	HoldCause string
	// Paused is set when this event tripped the breaker.
	Paused bool
	// Events lists the kinds of audit events recorded, in order.
	Events []string
}

// ChangeItem is one changed event for EnforceChangedGroup.
type ChangeItem struct {
	MsgID  string
	Change schemas.DomainChanged
}

// EnforceChangedGroup applies changed events in one transaction, set-based
// (enforceChanges: a few statements for the whole group, so one commit —
// one WAL flush — and a handful of round trips serve many events; this is
// what lets the enforcer keep up with a wave of lapses). Each event stays
// atomic on its own: when the group fails, it is applied again in a new
// transaction, each half in its own savepoint, down to single events, so
// an event that fails rolls back only its own writes and the others commit
// together. Events are applied in
// the order given (keep one domain's events in order); errs[i] is item i's
// error, and every item fails if the commit does. A message id seen before
// changes nothing and yields ResultDuplicate.
func (s *Store) EnforceChangedGroup(ctx context.Context, items []ChangeItem) (outs []Outcome, errs []error) {
	outs, errs = make([]Outcome, len(items)), make([]error, len(items))
	var valid []int
	for i, it := range items {
		if err := it.Change.Validate(); err != nil {
			errs[i] = err
		} else if it.MsgID == "" {
			errs[i] = fmt.Errorf("%w: message id is empty", schemas.ErrInvalid)
		} else {
			valid = append(valid, i)
		}
	}
	if len(valid) == 0 {
		return outs, errs
	}
	// The whole group at once; only if that fails, again event by event
	// (bisected in savepoints) in a new transaction. The group's own error
	// then comes back on the failing events.
	var (
		failed  error
		batches []outboxBatch
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res, bs, err := s.enforceChanges(ctx, tx, pick(items, valid))
		if err != nil {
			failed = err
			return err
		}
		for i, k := range valid {
			outs[k] = res[i]
		}
		batches = bs
		return nil
	})
	if failed != nil && ctx.Err() == nil {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			batches = nil
			return s.enforceIsolated(ctx, tx, items, valid, outs, errs, &batches)
		})
	}
	if err == nil {
		s.handOff(batches)
	}
	for i := range items {
		switch {
		case err != nil && errs[i] == nil:
			errs[i] = fmt.Errorf("enforce %s (%s): commit: %w", items[i].Change.Domain, items[i].MsgID, err)
		case errs[i] == nil:
			s.count(outs[i])
		}
	}
	return outs, errs
}

// enforceIsolated applies items[idx...] in a savepoint of tx (pgx runs a
// nested Begin as one). If that fails, it retries the two halves, each in
// its own savepoint, until the failing events stand alone: their errors go
// to errs, the others' outcomes to outs and their outbox batches to
// *batches. It returns an error only when ctx ended.
func (s *Store) enforceIsolated(ctx context.Context, tx pgx.Tx, items []ChangeItem, idx []int, outs []Outcome, errs []error, batches *[]outboxBatch) error {
	var (
		res []Outcome
		bs  []outboxBatch
	)
	err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
		var err error
		res, bs, err = s.enforceChanges(ctx, sp, pick(items, idx))
		return err
	})
	switch {
	case err == nil:
		for i, k := range idx {
			outs[k] = res[i]
		}
		*batches = append(*batches, bs...)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case len(idx) == 1:
		k := idx[0]
		errs[k] = fmt.Errorf("enforce %s (%s): %w", items[k].Change.Domain, items[k].MsgID, err)
		return nil
	}
	half := len(idx) / 2
	if err := s.enforceIsolated(ctx, tx, items, idx[:half], outs, errs, batches); err != nil {
		return err
	}
	return s.enforceIsolated(ctx, tx, items, idx[half:], outs, errs, batches)
}

// pick returns items[k] for each k in idx.
func pick(items []ChangeItem, idx []int) []ChangeItem {
	out := make([]ChangeItem, len(idx))
	for i, k := range idx {
		out[i] = items[k]
	}
	return out
}

func (s *Store) count(out Outcome) {
	s.metrics.events.WithLabelValues(out.Result).Inc()
	if out.Unverified > 0 {
		s.metrics.unverified.WithLabelValues(string(out.Reason)).Add(float64(out.Unverified))
	}
	if out.WouldUnverify > 0 {
		s.metrics.wouldBe.WithLabelValues(string(out.Reason)).Add(float64(out.WouldUnverify))
	}
}

// withAddresses returns e listing addrs and more, at most maxEventAddresses
// of them, with AddressCount giving the full number.
func withAddresses(e schemas.DomainEvent, addrs []lifecycle.Address, more []unverifiedRow) schemas.DomainEvent {
	e.Addresses = addressList(addrs, more)
	e.AddressCount = len(addrs) + len(more)
	return e
}

// addressList lists addresses for an audit.domain.* event, at most
// maxEventAddresses of them.
func addressList(addrs []lifecycle.Address, more []unverifiedRow) []schemas.Address {
	out := make([]schemas.Address, 0, min(len(addrs)+len(more), maxEventAddresses))
	for _, a := range addrs {
		if len(out) == maxEventAddresses {
			return out
		}
		out = append(out, schemas.Address{UserID: a.UserID, Email: a.Email, EmailAsSent: a.EmailAsSent})
	}
	for _, a := range more {
		if len(out) == maxEventAddresses {
			return out
		}
		out = append(out, schemas.Address{UserID: a.UserID, Email: a.Email, EmailAsSent: a.EmailAsSent})
	}
	return out
}
