package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// floorBatch is the addresses per transaction of the like-for-like floor
// (the same statement size as the bare UPDATE).
const floorBatch = updateBatch

// floorWindow bounds the floor's unacknowledged publishes.
const floorWindow = 4000

// The floor's audit event, written here with plain structs so that no
// domainguard code runs in the baseline: a CloudEvents envelope with the
// fields and sizes of the enforcer's audit.email.unverified event.
type (
	floorEvidence struct {
		Provider   string    `json:"provider"`
		NotFound   bool      `json:"not_found,omitempty"`
		ObservedAt time.Time `json:"observed_at"`
	}
	floorUnverified struct {
		UserID        string        `json:"user_id"`
		Email         string        `json:"email"`
		Domain        string        `json:"domain"`
		Reason        string        `json:"reason"`
		Phase         string        `json:"phase"`
		PreviousPhase string        `json:"previous_phase"`
		Evidence      floorEvidence `json:"evidence"`
		UnverifiedAt  time.Time     `json:"unverified_at"`
	}
	floorEnvelope struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Time            time.Time       `json:"time"`
		Subject         string          `json:"subject"`
		DataContentType string          `json:"datacontenttype"`
		Data            json.RawMessage `json:"data"`
	}
)

// floorAddress names one seeded address of domain i (from 1), address j.
func floorAddress(prefix string, i, j int) (user, email, domain string) {
	domain = prefix + strconv.Itoa(i) + ".com"
	return prefix + "-u" + strconv.Itoa(i) + "-" + strconv.Itoa(j), "u" + strconv.Itoa(j) + "@" + domain, domain
}

// bareFloor does exactly the enforcer's per-address work with no
// domainguard code, on one connection: per floorBatch addresses one
// transaction with a batched UPDATE … FROM unnest of the emails rows and
// two batched INSERTs (an audit_log row and an outbox row per address,
// the same JSON documents the enforcer writes), sent in one round trip;
// after each commit the batch's audit events are published asynchronously
// to subject with Nats-Msg-Id = event id (at most floorWindow
// unacknowledged). It returns when every publish is acknowledged; the
// caller times it until the last event reaches its subscriber.
func bareFloor(ctx context.Context, conn *pgx.Conn, js jetstream.JetStream, subject, prefix string, domains, per int) error {
	var (
		users, emails, doms, ids, types, datas []string
		payloads                               [][]byte
		pending                                []jetstream.PubAckFuture
		total                                  int
	)
	kind := "audit.email.unverified"
	await := func(f jetstream.PubAckFuture) error {
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return fmt.Errorf("floor: publish: %w", err)
		case <-time.After(30 * time.Second):
			return fmt.Errorf("floor: no publish ack within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	flush := func() error {
		if len(users) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		now := time.Now().UTC()
		b.Queue(`
UPDATE emails e
SET verified = false, unverified_at = $3, unverify_reason = 'domain_released', unverify_phase = 'released', updated_at = $3
FROM unnest($1::text[], $2::text[]) AS t(user_id, email)
WHERE e.user_id = t.user_id AND e.email = t.email AND e.verified AND e.verified_at <= $3`, users, emails, now)
		b.Queue(`
INSERT INTO audit_log (id, type, domain, user_id, email, dry_run, data, created_at)
SELECT id::uuid, type, domain, user_id, email, false, data::jsonb, $7
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     AS t(id, type, domain, user_id, email, data)`, ids, types, doms, users, emails, datas, now)
		b.Queue(`
INSERT INTO outbox (id, subject, payload)
SELECT id::uuid, subject, payload FROM unnest($1::text[], $2::text[], $3::bytea[]) AS t(id, subject, payload)`, ids, types, payloads)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			br := tx.SendBatch(ctx, b)
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return fmt.Errorf("update: %w", err)
			}
			total += int(tag.RowsAffected())
			for range 2 {
				if _, err := br.Exec(); err != nil {
					br.Close()
					return fmt.Errorf("insert: %w", err)
				}
			}
			return br.Close()
		})
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		for i, id := range ids {
			msg := &nats.Msg{Subject: subject, Data: payloads[i], Header: nats.Header{}}
			msg.Header.Set("Nats-Msg-Id", id)
			msg.Header.Set("Content-Type", "application/cloudevents+json")
			if len(pending) >= floorWindow {
				if err := await(pending[0]); err != nil {
					return err
				}
				pending = pending[1:]
			}
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				return fmt.Errorf("floor: publish: %w", err)
			}
			pending = append(pending, f)
		}
		users, emails, doms, ids, types, datas, payloads = users[:0], emails[:0], doms[:0], ids[:0], types[:0], datas[:0], payloads[:0]
		return nil
	}
	observedAt := time.Now().UTC()
	for i := 1; i <= domains; i++ {
		for j := 1; j <= per; j++ {
			user, email, domain := floorAddress(prefix, i, j)
			now := time.Now().UTC()
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("floor: event id: %w", err)
			}
			data, err := json.Marshal(floorUnverified{UserID: user, Email: email, Domain: domain, Reason: "domain_released",
				Phase: "released", PreviousPhase: "active", Evidence: floorEvidence{Provider: providerName, NotFound: true, ObservedAt: observedAt},
				UnverifiedAt: now})
			if err != nil {
				return fmt.Errorf("floor: encode: %w", err)
			}
			payload, err := json.Marshal(floorEnvelope{SpecVersion: "1.0", ID: id.String(), Source: "domainguard/enforcer",
				Type: "io.domainguard." + kind, Time: now, Subject: email, DataContentType: "application/json", Data: data})
			if err != nil {
				return fmt.Errorf("floor: encode: %w", err)
			}
			users, emails, doms = append(users, user), append(emails, email), append(doms, domain)
			ids, types, datas, payloads = append(ids, id.String()), append(types, kind), append(datas, string(data)), append(payloads, payload)
			if len(users) == floorBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for _, f := range pending {
		if err := await(f); err != nil {
			return err
		}
	}
	if total != domains*per {
		return fmt.Errorf("floor: updated %d of %d rows", total, domains*per)
	}
	return nil
}
