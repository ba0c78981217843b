package enforcer

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/schemas"
)

// NotifyChannel is the LISTEN/NOTIFY channel an enforcing transaction
// signals when it wrote outbox rows; the relay wakes on it.
const NotifyChannel = "domainguard_outbox"

// auditEvent is one audit event an enforcing transaction emits: an
// audit_log row always, an outbox row unless dry-running.
type auditEvent struct {
	kind   string // unprefixed subject, e.g. audit.email.unverified
	domain string
	userID string
	email  string
	event  schemas.Event
}

// newAuditEvent builds the envelope. The id must be derived from the input
// (schemas.DerivedID) so reprocessing yields the same ids.
func (s *Store) newAuditEvent(id, kind, domain, userID, email string, now time.Time, data schemas.Payload) (auditEvent, error) {
	subject := domain
	if email != "" {
		subject = email
	}
	ev, err := schemas.NewEventWithID(id, s.cfg.Source, kind, subject, now, data)
	if err != nil {
		return auditEvent{}, err
	}
	return auditEvent{kind: kind, domain: domain, userID: userID, email: email, event: ev}, nil
}

// writeChunk bounds the rows of one multi-row statement.
const writeChunk = 2000

// queueAudit queues the statements recording evs in audit_log and, unless
// dryRun, in the outbox (then a NOTIFY for the relay). They run inside the
// enforcing transaction, so the events exist exactly when the change they
// describe does. Ids already present are skipped (belt and braces with
// processed_messages).
func queueAudit(b *pgx.Batch, evs []auditEvent, dryRun bool, now time.Time) error {
	for start := 0; start < len(evs); start += writeChunk {
		chunk := evs[start:min(start+writeChunk, len(evs))]
		n := len(chunk)
		ids := make([]string, n)
		types := make([]string, n)
		domains := make([]*string, n)
		users := make([]*string, n)
		emails := make([]*string, n)
		datas := make([]string, n)
		payloads := make([][]byte, n)
		for i, e := range chunk {
			ids[i] = e.event.ID
			types[i] = e.kind
			domains[i] = nullable(e.domain)
			users[i] = nullable(e.userID)
			emails[i] = nullable(e.email)
			datas[i] = string(e.event.Data)
			raw, err := e.event.Marshal()
			if err != nil {
				return fmt.Errorf("encode %s event: %w", e.kind, err)
			}
			payloads[i] = raw
		}
		b.Queue(`
INSERT INTO audit_log (id, type, domain, user_id, email, dry_run, data, created_at)
SELECT id::uuid, type, domain, user_id, email, $6, data::jsonb, $7
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $8::text[])
     AS t(id, type, domain, user_id, email, data)
ON CONFLICT (id) DO NOTHING`, ids, types, domains, users, emails, dryRun, now, datas)
		if dryRun {
			continue
		}
		b.Queue(`
INSERT INTO outbox (id, subject, payload)
SELECT id::uuid, subject, payload FROM unnest($1::text[], $2::text[], $3::bytea[]) AS t(id, subject, payload)
ON CONFLICT (id) DO NOTHING`, ids, types, payloads)
	}
	if !dryRun && len(evs) > 0 {
		b.Queue(`SELECT pg_notify($1, '')`, NotifyChannel)
	}
	return nil
}

// sendBatch runs the queued statements in one round trip and reports the
// first failure.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for i := range b.Len() {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("statement %d of %d: %w", i+1, b.Len(), err)
		}
	}
	return br.Close()
}

// writeAudit records evs (queueAudit) at once.
func writeAudit(ctx context.Context, tx pgx.Tx, evs []auditEvent, dryRun bool, now time.Time) error {
	b := &pgx.Batch{}
	if err := queueAudit(b, evs, dryRun, now); err != nil {
		return err
	}
	if err := sendBatch(ctx, tx, b); err != nil {
		return fmt.Errorf("record audit events: %w", err)
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
