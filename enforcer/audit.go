package enforcer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
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

// outboxBatchSubject is the subject of an outbox batch row: it is never
// published itself; it stands for the events of one enforcing statement
// that were written already marked sent (see outboxBatch).
const outboxBatchSubject = "domainguard.outbox.batch"

// outboxBatch is audit events an enforcing transaction wrote to the outbox
// already marked sent, for the enforcer to publish straight after the
// commit from memory (no read-back, no UPDATE per row). Their batch row
// (subject outboxBatchSubject, unsent, payload the JSON list of the event
// ids) is written in the same statement and stands for them: the direct
// publisher marks it sent once JetStream acknowledged every event, and the
// relay publishes the listed rows again (same Nats-Msg-Id, so JetStream
// drops what it already has) when the enforcer crashed or the publish
// failed before that. Exactly-once therefore rests on one row per batch
// instead of one UPDATE per event.
type outboxBatch struct {
	id     string // the batch row's id
	events []outboxEvent
}

// outboxEvent is one outbox row as published: Nats-Msg-Id = id.
type outboxEvent struct {
	id, subject string
	payload     []byte
}

// queueAudit queues the statements recording evs in audit_log and, unless
// dryRun, in the outbox. They run inside the enforcing transaction, so the
// events exist exactly when the change they describe does. Ids already
// present are skipped (belt and braces with processed_messages). With
// batches nil the outbox rows are unsent, for the relay (woken by a
// NOTIFY); otherwise they are written as outbox batches, appended to
// *batches (once the batch has run) for the caller to publish after the
// commit.
func queueAudit(b *pgx.Batch, evs []auditEvent, dryRun bool, now time.Time, batches *[]outboxBatch) error {
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
		switch {
		case dryRun:
		case batches == nil:
			b.Queue(`
INSERT INTO outbox (id, subject, payload)
SELECT id::uuid, subject, payload FROM unnest($1::text[], $2::text[], $3::bytea[]) AS t(id, subject, payload)
ON CONFLICT (id) DO NOTHING`, ids, types, payloads)
		default:
			queueOutboxBatch(b, ids, types, payloads, batches)
		}
	}
	if !dryRun && batches == nil && len(evs) > 0 {
		b.Queue(`SELECT pg_notify($1, '')`, NotifyChannel)
	}
	return nil
}

// queueOutboxBatch queues the outbox rows of one chunk as an outbox batch:
// the rows inserted already marked sent and, in the same statement, the
// batch row listing the ids actually inserted. The batch goes to *batches
// only when every row was new: otherwise (an id seen before) the relay
// publishes exactly the listed rows.
func queueOutboxBatch(b *pgx.Batch, ids, types []string, payloads [][]byte, batches *[]outboxBatch) {
	ob := outboxBatch{id: uuid.NewString(), events: make([]outboxEvent, len(ids))}
	for i := range ids {
		ob.events[i] = outboxEvent{id: ids[i], subject: types[i], payload: payloads[i]}
	}
	b.Queue(`
WITH ins AS (
  INSERT INTO outbox (id, subject, payload, sent_at)
  SELECT id::uuid, subject, payload, now() FROM unnest($1::text[], $2::text[], $3::bytea[]) AS t(id, subject, payload)
  ON CONFLICT (id) DO NOTHING
  RETURNING id)
INSERT INTO outbox (id, subject, payload)
SELECT $4::uuid, $5, convert_to(json_agg(id)::text, 'UTF8') FROM ins HAVING count(*) > 0
RETURNING (SELECT count(*) FROM ins)`, ids, types, payloads, ob.id, outboxBatchSubject).QueryRow(func(row pgx.Row) error {
		var inserted int64
		switch err := row.Scan(&inserted); {
		case errors.Is(err, pgx.ErrNoRows): // every id seen before: nothing to publish
		case err != nil:
			return err
		case inserted == int64(len(ids)):
			*batches = append(*batches, ob)
		}
		return nil
	})
}

// sendBatch runs the queued statements in one round trip and reports the
// first failure.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for i, q := range b.QueuedQueries {
		var err error
		if q.Fn != nil { // a statement whose result the caller reads
			err = q.Fn(br)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			br.Close()
			return fmt.Errorf("statement %d of %d: %w", i+1, b.Len(), err)
		}
	}
	return br.Close()
}

// writeAudit records evs (queueAudit) at once.
func writeAudit(ctx context.Context, tx pgx.Tx, evs []auditEvent, dryRun bool, now time.Time) error {
	b := &pgx.Batch{}
	if err := queueAudit(b, evs, dryRun, now, nil); err != nil {
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
