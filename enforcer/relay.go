package enforcer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

// Relay publishes outbox rows to the AUDIT stream. Each row is published
// with Nats-Msg-Id = its id (the CloudEvent id), then marked sent in the
// same transaction that claimed it (FOR UPDATE SKIP LOCKED, so several
// replicas share the work without publishing a row twice at once). A crash
// between publish and commit re-publishes the row with the same id, which
// JetStream drops within its duplicate window: audit events are never lost
// and never appear under two ids.
type Relay struct {
	cfg     Config
	pool    *pgxpool.Pool
	js      outboxJetStream
	topo    broker.Topology
	metrics *metrics
	log     *slog.Logger

	// cursor is where Run's next round claims from (Run's goroutine only).
	cursor relayCursor
}

// outboxJetStream is what the relay uses of JetStream: publishing, and the
// DLQ stream's depth for its gauge.
type outboxJetStream interface {
	jetstream.Publisher
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
}

// relayCursor is the last row a full round claimed. The next round claims
// after it instead of from the oldest unsent row: the index entries of the
// rows marked sent since the last vacuum need not be skipped again on every
// round, which made a large backlog quadratic. Rows behind the cursor (a
// failed publish, a transaction that committed late with an older
// created_at) are claimed when the relay starts again from the oldest row:
// after a round that was not full, and at least every RelayInterval.
type relayCursor struct {
	set       bool
	createdAt time.Time
	id        string
	since     time.Time // when the relay last claimed from the oldest row
}

// NewRelay checks cfg (Pool and JS are required) and returns a Relay.
func NewRelay(cfg Config) (*Relay, error) {
	cfg, m, err := cfg.prepare("enforcer relay", true)
	if err != nil {
		return nil, err
	}
	return newRelay(cfg, m), nil
}

func newRelay(cfg Config, m *metrics) *Relay {
	return &Relay{cfg: cfg, pool: cfg.Pool, js: cfg.JS, topo: cfg.Topology, metrics: m, log: cfg.Logger.With("component", "outbox-relay")}
}

// Run publishes the outbox until ctx ends, waking on NOTIFY
// domainguard_outbox and at least every RelayInterval. It returns nil after
// ctx ends (a round in flight is rolled back and its rows published again
// later under the same ids).
func (r *Relay) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	listenCtx, stopListen := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		r.listen(listenCtx, wake)
	}()
	defer func() {
		stopListen()
		<-listening
	}()

	var lastGauges, lastPrune time.Time
	failures := 0
	var inFlight *relayRound
	defer func() {
		if inFlight != nil {
			inFlight.rollback(ctx) // published again later under the same ids
		}
	}()
	for {
		n, err := r.relayStep(ctx, &inFlight)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			r.log.Error("outbox relay round failed", "error", err, "failures", failures)
		} else {
			failures = 0
		}
		if time.Since(lastGauges) >= r.cfg.RelayInterval {
			if err := r.RefreshGauges(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("refresh enforcer gauges", "error", err)
			}
			lastGauges = time.Now()
		}
		if time.Since(lastPrune) >= time.Hour {
			if err := r.Prune(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("prune outbox", "error", err)
			}
			lastPrune = time.Now()
		}
		if err == nil && n == r.cfg.RelayBatch {
			continue // more waiting
		}
		wait := r.cfg.RelayInterval
		if failures > 0 {
			wait = min(r.cfg.RelayInterval<<min(failures, 6), time.Minute)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// listen holds a dedicated connection LISTENing on NotifyChannel and pokes
// wake on every notification; it reconnects after errors (the poll keeps
// the relay going meanwhile).
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
			if err != nil {
				return fmt.Errorf("connect: %w", err)
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			for {
				if _, err := conn.WaitForNotification(ctx); err != nil {
					return fmt.Errorf("wait for notification: %w", err)
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("outbox LISTEN failed; polling every interval meanwhile", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * r.cfg.RelayInterval):
		}
	}
}

// PublishPending publishes one round of at most RelayBatch unsent outbox
// rows and marks those JetStream acknowledged as sent. It returns how many
// rows it claimed.
func (r *Relay) PublishPending(ctx context.Context) (int, error) {
	rd, err := r.startRound(ctx, relayCursor{})
	if err != nil {
		return 0, err
	}
	return r.finishRound(ctx, rd)
}

// relayRound is a round of the relay between startRound and finishRound:
// its transaction holds the claimed rows, whose publishes are in flight.
type relayRound struct {
	tx      pgx.Tx
	last    relayCursor  // the last row claimed
	n       int          // rows claimed
	entries []relayEntry // rows published
	pubErr  error
}

// relayEntry is one claimed outbox row and the publishes that must be
// acknowledged before it is marked sent: its own, or those of the events an
// outbox batch row lists.
type relayEntry struct {
	id      string
	futures []jetstream.PubAckFuture
}

// startRound claims at most RelayBatch unsent outbox rows, oldest first
// (FOR UPDATE SKIP LOCKED: rows another round or replica holds are
// skipped), and publishes them asynchronously, in order, with Nats-Msg-Id
// = row id; for an outbox batch row, the events it lists, in their order.
// A batch row younger than directGrace is left to the direct publisher of
// the enforcer that wrote it. It does not wait for the acks: Run starts the
// next round while this one's are on their way.
func (r *Relay) startRound(ctx context.Context, after relayCursor) (*relayRound, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox: begin: %w", err)
	}
	rd := &relayRound{tx: tx}
	// The zero cursor (0001-01-01, "") is before every row.
	rows, err := tx.Query(ctx, `
SELECT id::text AS id, subject, payload, created_at FROM outbox
WHERE sent_at IS NULL AND created_at >= $2 AND (created_at > $2 OR id::text > $3)
  AND (subject <> $4 OR created_at < now() - $5::interval)
ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`, r.cfg.RelayBatch, after.createdAt, after.id, outboxBatchSubject, r.directGrace())
	if err != nil {
		rd.rollback(ctx)
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	var claimed []outboxEvent
	for rows.Next() {
		var row outboxEvent
		if err := rows.Scan(&row.id, &row.subject, &row.payload, &rd.last.createdAt); err != nil {
			rows.Close()
			rd.rollback(ctx)
			return nil, fmt.Errorf("outbox: claim: %w", err)
		}
		rd.last.id, rd.last.set = row.id, true
		claimed = append(claimed, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		rd.rollback(ctx)
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	rd.n = len(claimed)
	for _, row := range claimed {
		evs := []outboxEvent{row}
		if row.subject == outboxBatchSubject {
			if evs, err = batchEvents(ctx, tx, row); err != nil {
				rd.pubErr = err
				break // published again in a later round
			}
		}
		e := relayEntry{id: row.id}
		for _, ev := range evs {
			f, err := r.publish(ev)
			if err != nil {
				rd.pubErr = err
				break
			}
			e.futures = append(e.futures, f)
		}
		if rd.pubErr != nil {
			break // published again in a later round
		}
		rd.entries = append(rd.entries, e)
	}
	return rd, nil
}

// batchEvents reads the events an outbox batch row lists, in its order.
func batchEvents(ctx context.Context, tx pgx.Tx, batch outboxEvent) ([]outboxEvent, error) {
	var ids []string
	if err := json.Unmarshal(batch.payload, &ids); err != nil {
		return nil, fmt.Errorf("outbox: batch %s: %w", batch.id, err)
	}
	rows, err := tx.Query(ctx, `
SELECT o.id::text, o.subject, o.payload
FROM unnest($1::uuid[]) WITH ORDINALITY AS l(id, n) JOIN outbox o ON o.id = l.id
ORDER BY l.n`, ids)
	if err != nil {
		return nil, fmt.Errorf("outbox: batch %s: %w", batch.id, err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxEvent, error) {
		var ev outboxEvent
		err := row.Scan(&ev.id, &ev.subject, &ev.payload)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: batch %s: %w", batch.id, err)
	}
	return evs, nil
}

// publish publishes one outbox event asynchronously to AUDIT with
// Nats-Msg-Id = its id.
func (r *Relay) publish(ev outboxEvent) (jetstream.PubAckFuture, error) {
	// The payload is the event; ev.id is its id.
	msg := broker.Message{Subject: r.topo.Namespace.Subject(ev.subject), Data: ev.payload, ID: ev.id, ContentType: broker.ContentTypeCloudEvent}
	f, err := r.js.PublishMsgAsync(msg.Msg())
	if err != nil {
		return nil, fmt.Errorf("outbox: publish %s: %w", ev.id, err)
	}
	return f, nil
}

// ackTimeout bounds the wait for a round's publish acks.
const ackTimeout = 30 * time.Second

var errAckTimeout = fmt.Errorf("outbox: acks outstanding after %s", ackTimeout)

// awaitAck waits for f's ack until timeout fires or ctx ends.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture, timeout <-chan time.Time) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("outbox: publish %s: %w", f.Msg().Header.Get(schemas.HeaderMsgID), err)
	case <-timeout:
		return errAckTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rd *relayRound) rollback(ctx context.Context) {
	_ = rd.tx.Rollback(context.WithoutCancel(ctx)) // after commit a no-op
}

// finishRound waits for the round's acks, in order, marks the rows whose
// publishes were all acknowledged sent and commits. A row whose publish
// failed stays unsent (its lock ends with the transaction) and is
// published again later under the same id. It returns how many rows the
// round claimed.
func (r *Relay) finishRound(ctx context.Context, rd *relayRound) (int, error) {
	defer rd.rollback(ctx)
	pubErr := rd.pubErr
	sent := make([]string, 0, len(rd.entries))
	published := 0
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
wait:
	for _, e := range rd.entries {
		for _, f := range e.futures {
			if err := awaitAck(ctx, f, timeout.C); err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				if pubErr == nil {
					pubErr = err
				}
				if errors.Is(err, errAckTimeout) {
					break wait
				}
				continue wait
			}
		}
		sent = append(sent, e.id)
		published += len(e.futures)
	}
	if len(sent) > 0 {
		if _, err := rd.tx.Exec(ctx, `UPDATE outbox SET sent_at = now() WHERE id = ANY($1::text[]::uuid[])`, sent); err != nil {
			return 0, fmt.Errorf("outbox: mark sent: %w", err)
		}
		if err := rd.tx.Commit(ctx); err != nil {
			return 0, fmt.Errorf("outbox: commit: %w", err)
		}
		r.metrics.published.Add(float64(published))
	}
	return rd.n, pubErr
}

// relayStep starts a round and then finishes the one before it, if any:
// while a full round's acks are on their way, the next round is claimed
// and published (at most two rounds, 2 × RelayBatch publishes, in flight;
// published and acknowledged in order). A round that claimed fewer than
// RelayBatch rows (the outbox is drained) is finished at once; otherwise
// it is left in *inFlight for the next step. It returns the rows the new
// round claimed.
func (r *Relay) relayStep(ctx context.Context, inFlight **relayRound) (int, error) {
	if !r.cursor.set || time.Since(r.cursor.since) >= r.cfg.RelayInterval {
		r.cursor = relayCursor{since: time.Now()}
	}
	cur, err := r.startRound(ctx, r.cursor)
	if prev := *inFlight; prev != nil {
		*inFlight = nil
		if _, perr := r.finishRound(ctx, prev); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	if cur == nil {
		return 0, err
	}
	if cur.n < r.cfg.RelayBatch || err != nil {
		r.cursor.set = false // the next round starts from the oldest row
		n, cerr := r.finishRound(ctx, cur)
		return n, errors.Join(err, cerr)
	}
	since := r.cursor.since
	r.cursor = cur.last
	r.cursor.since = since
	*inFlight = cur
	return cur.n, nil
}

// RefreshGauges reads the outbox lag, the open holds and the breaker into
// their gauges.
func (r *Relay) RefreshGauges(ctx context.Context) error {
	var (
		lag, holdAge float64
		holds        int
		open         bool
	)
	err := r.pool.QueryRow(ctx, `
SELECT COALESCE((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox WHERE sent_at IS NULL), 0)::float8,
       (SELECT count(*) FROM holds WHERE status = 'pending'),
       COALESCE((SELECT extract(epoch FROM now() - min(created_at)) FROM holds WHERE status = 'pending'), 0)::float8,
       (SELECT open FROM breaker WHERE id = 1)`).Scan(&lag, &holds, &holdAge, &open)
	if err != nil {
		return fmt.Errorf("read gauges: %w", err)
	}
	r.metrics.outboxLag.Set(max(lag, 0))
	r.metrics.holdsOpen.Set(float64(holds))
	r.metrics.holdAge.Set(max(holdAge, 0))
	if r.js != nil {
		r.refreshStreamGauges(ctx)
	}
	if open {
		r.metrics.breakerOpen.Set(1)
	} else {
		r.metrics.breakerOpen.Set(0)
	}
	return nil
}

// refreshStreamGauges reads each stream's messages and message limit (every
// role's NATS user may read stream info). Dead letters of every role land
// in one stream; its depth is also the "DLQ growing" alert's input. A
// stream that cannot be read keeps its last values.
func (r *Relay) refreshStreamGauges(ctx context.Context) {
	for _, name := range []string{schemas.StreamAccounts, schemas.StreamDomainChecks, schemas.StreamDomainEvents,
		schemas.StreamAudit, schemas.StreamDLQ} {
		s, err := r.js.Stream(ctx, r.topo.Namespace.Stream(name))
		if err != nil {
			continue
		}
		info := s.CachedInfo()
		r.metrics.streamMsgs.WithLabelValues(name).Set(float64(info.State.Msgs))
		r.metrics.streamMaxMsgs.WithLabelValues(name).Set(float64(info.Config.MaxMsgs))
		if name == schemas.StreamDLQ {
			r.metrics.dlqMessages.Set(float64(info.State.Msgs))
		}
	}
}

// Prune deletes outbox rows sent more than OutboxRetention (at least a
// day) ago and processed_messages entries older than ProcessedRetention
// (longer than DOMAIN_EVENTS keeps messages, so no redelivery can outlive
// its entry; at least 14 days), through the prune functions the shipped SQL
// role may execute.
func (r *Relay) Prune(ctx context.Context) error {
	now := r.cfg.Clock.Now().UTC()
	// sent_at is the database's time.
	// Through the owner's prune functions (migration 0003): the enforcer's
	// SQL role may not delete from these tables itself.
	if _, err := r.pool.Exec(ctx, `SELECT prune_outbox($1::interval)`, r.cfg.OutboxRetention); err != nil {
		return fmt.Errorf("prune outbox: %w", err)
	}
	if _, err := r.pool.Exec(ctx, `SELECT prune_processed_messages($1, $2)`, consumerName, now.Add(-r.cfg.ProcessedRetention)); err != nil {
		return fmt.Errorf("prune processed messages: %w", err)
	}
	return nil
}

// directPublisher carries the outbox batches of committed enforcing
// transactions to the relay's runDirect.
type directPublisher struct {
	queue chan []outboxBatch
	done  chan struct{} // closed when runDirect stops taking batches
}

func newDirectPublisher(workers int) *directPublisher {
	return &directPublisher{queue: make(chan []outboxBatch, 2*workers), done: make(chan struct{})}
}

// directGrace is how long the relay leaves an unsent outbox batch row to
// the direct publisher before it publishes the batch itself (the enforcer
// that wrote it crashed, or its publish failed).
func (r *Relay) directGrace() time.Duration { return 10 * r.cfg.RelayInterval }

// runDirect publishes the outbox batches handed to d, straight from
// memory, until ctx ends: whatever is queued, up to RelayBatch events per
// round (publishBatches). A batch it could not publish is left to the
// relay.
func (r *Relay) runDirect(ctx context.Context, d *directPublisher) {
	defer close(d.done)
	for {
		var batches []outboxBatch
		select {
		case <-ctx.Done():
			return
		case batches = <-d.queue:
		}
		n := countEvents(batches)
	more:
		for n < r.cfg.RelayBatch {
			select {
			case bs := <-d.queue:
				batches = append(batches, bs...)
				n += countEvents(bs)
			default:
				break more
			}
		}
		if err := r.publishBatches(ctx, batches); err != nil && ctx.Err() == nil {
			r.log.Warn("direct publish failed; the relay publishes these events", "error", err, "events", n)
		}
	}
}

func countEvents(batches []outboxBatch) int {
	n := 0
	for _, b := range batches {
		n += len(b.events)
	}
	return n
}

// publishBatches claims the batch rows of batches (a batch the relay holds
// or already published is skipped: nothing is published twice), publishes
// their events in order with Nats-Msg-Id = event id, and once every ack is
// in marks the batch rows sent: one small row per batch instead of one
// UPDATE per event. On any failure the transaction rolls back and the
// relay publishes the batches again later (JetStream drops the ids it
// already has).
func (r *Relay) publishBatches(ctx context.Context, batches []outboxBatch) error {
	ids := make([]string, len(batches))
	for i, b := range batches {
		ids[i] = b.id
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("outbox: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // after commit a no-op
	claimed := map[string]bool{}
	b := &pgx.Batch{}
	// A commit lost in a database crash only makes the relay publish the
	// batch again, which JetStream de-duplicates: no need to wait for the
	// WAL flush.
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`
UPDATE outbox SET sent_at = now()
WHERE id IN (SELECT id FROM outbox WHERE id = ANY($1::uuid[]) AND sent_at IS NULL FOR UPDATE SKIP LOCKED)
RETURNING id::text`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			claimed[id] = true
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("outbox: claim batches: %w", err)
	}
	var futures []jetstream.PubAckFuture
	for _, b := range batches {
		if !claimed[b.id] {
			continue
		}
		for _, ev := range b.events {
			f, err := r.publish(ev)
			if err != nil {
				return err
			}
			futures = append(futures, f)
		}
	}
	// What is published is finished even when ctx ends (a shutdown): a
	// batch marked sent now is not published again after the restart,
	// which may come after JetStream's duplicate window. ackTimeout bounds
	// the wait.
	finish := context.WithoutCancel(ctx)
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	for _, f := range futures {
		if err := awaitAck(finish, f, timeout.C); err != nil {
			return err
		}
	}
	if err := tx.Commit(finish); err != nil {
		return fmt.Errorf("outbox: commit batches: %w", err)
	}
	r.metrics.published.Add(float64(len(futures)))
	return nil
}
