package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler processes one message and says how it went; the consumer loop
// settles the message by the returned Outcome (Topology.Settle): handlers
// never ack, nak or dead-letter themselves. A panicking handler counts as
// Retry. ctx is not cancelled when Run's context ends, only when the drain
// timeout after that runs out: a handler in flight at shutdown may finish
// its work.
type Handler func(ctx context.Context, msg jetstream.Msg) Outcome

// BatchHandler processes one fetched batch, for roles that gain from
// handling several messages at once (the enforcer batches heartbeats). It
// settles each message of the batch by calling settle with its Outcome,
// from any goroutine, as soon as that message is handled. Messages it
// leaves unsettled, because it returned an error, panicked or forgot them,
// are settled with Retry.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg, settle func(jetstream.Msg, Outcome)) error

// ConsumeOptions configures Run and RunBatch.
type ConsumeOptions struct {
	// Stream (unprefixed, e.g. schemas.StreamDomainChecks) and Durable
	// (e.g. ConsumerChecker) name the consumer. Required.
	Stream, Durable string
	// Batch is the most messages one Fetch asks for. Default 10. Run asks
	// for no more than it has idle workers, so nothing waits in a client
	// buffer while its ack wait runs; RunBatch hands each fetch to the
	// handler as one slice, which must be handled within the ack wait.
	Batch int
	// Workers is the number of handlers (Run) or batches (RunBatch) in
	// flight at once. Default 1.
	Workers int
	// MaxWait bounds one Fetch; shutdown waits for at most one MaxWait.
	// Default 5s.
	MaxWait time.Duration
	// DrainTimeout is how long handlers in flight at shutdown may still run
	// before their context is cancelled. Default 30s.
	DrainTimeout time.Duration
	// NakDelay is the redelivery delay of a Retry on the first delivery;
	// it doubles with every further delivery, up to 1 minute. Default 1s.
	NakDelay time.Duration
	// MaxDeliver is the consumer's MaxDeliver: a Retry on that delivery is
	// dead-lettered. Default (0): the topology's setting for Durable
	// (Topology.IsLastDelivery).
	MaxDeliver int
	// ConfirmAck acknowledges Done messages with DoubleAck (waiting for the
	// server's confirmation) instead of Ack.
	ConfirmAck bool
	// OnSettled, if set, is called after every message is settled (from
	// several goroutines at once), for the role's metrics.
	OnSettled func(msg jetstream.Msg, s Settlement, o Outcome)
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

func (o ConsumeOptions) withDefaults() ConsumeOptions {
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 5 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.NakDelay <= 0 {
		o.NakDelay = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Run pulls messages from the durable consumer and hands each to h on one of
// o.Workers goroutines until ctx ends. Then it stops fetching, Naks messages
// that arrive after the end (so another process gets them at once), waits
// for the handlers in flight and returns nil. It recovers by itself when the
// consumer or stream is deleted or the server restarts: it logs, backs off,
// ensures the topology again and fetches anew. It returns an error only for
// invalid options.
func (t Topology) Run(ctx context.Context, js jetstream.JetStream, o ConsumeOptions, h Handler) error {
	if h == nil {
		return errors.New("consume: nil handler")
	}
	return t.run(ctx, js, o, func(p *puller, hctx context.Context, slots chan struct{}, wg *sync.WaitGroup) {
		n := 1
	grab:
		for n < p.o.Batch {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break grab
			}
		}
		batch, ok := p.fetch(ctx, n)
		if !ok {
			releaseSlots(slots, n)
			return
		}
		used := 0
		for msg := range batch.Messages() {
			if ctx.Err() != nil {
				p.settle(hctx, msg, Release(errors.New("consumer stopping")))
				continue
			}
			if used == n {
				// More messages than slots taken (the server should never
				// send more than asked, but if it does): take a slot for
				// each extra one, so every handler releases a slot it owns
				// and the count stays balanced.
				slots <- struct{}{}
				n++
			}
			used++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				p.settle(hctx, msg, callHandler(hctx, h, msg))
			}()
		}
		releaseSlots(slots, n-used)
		p.done(ctx, batch.Error())
		if used == 0 {
			p.idle(ctx)
		}
	})
}

// RunBatch is Run for handlers of whole batches: each Fetch of up to
// o.Batch messages (waiting at most o.MaxWait) is handed to h as one slice.
func (t Topology) RunBatch(ctx context.Context, js jetstream.JetStream, o ConsumeOptions, h BatchHandler) error {
	if h == nil {
		return errors.New("consume: nil batch handler")
	}
	return t.run(ctx, js, o, func(p *puller, hctx context.Context, slots chan struct{}, wg *sync.WaitGroup) {
		batch, ok := p.fetch(ctx, p.o.Batch)
		if !ok {
			releaseSlots(slots, 1)
			return
		}
		var msgs []jetstream.Msg
		for msg := range batch.Messages() {
			msgs = append(msgs, msg)
		}
		p.done(ctx, batch.Error())
		if len(msgs) == 0 {
			releaseSlots(slots, 1)
			p.idle(ctx)
			return
		}
		if ctx.Err() != nil {
			for _, m := range msgs {
				p.settle(hctx, m, Release(errors.New("consumer stopping")))
			}
			releaseSlots(slots, 1)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p.handleBatch(hctx, h, msgs)
		}()
	})
}

// run is the loop shared by Run and RunBatch: take a worker slot, then let
// step fetch and dispatch (step releases the slot or hands it to a handler).
func (t Topology) run(ctx context.Context, js jetstream.JetStream, o ConsumeOptions,
	step func(p *puller, hctx context.Context, slots chan struct{}, wg *sync.WaitGroup)) error {
	if o.Stream == "" || o.Durable == "" {
		return fmt.Errorf("consume: stream (%q) and durable (%q) are required", o.Stream, o.Durable)
	}
	o = o.withDefaults()
	o.Logger = o.Logger.With("stream", o.Stream, "consumer", o.Durable)
	p := newPuller(t.WithDefaults(), js, o)

	hctx, hcancel := drainContext(ctx, o.DrainTimeout)
	defer hcancel()
	var wg sync.WaitGroup
	defer wg.Wait() // runs before hcancel: handlers finish first
	slots := make(chan struct{}, o.Workers)

	o.Logger.Info("consuming", "workers", o.Workers, "batch", o.Batch)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			o.Logger.Info("stopping: waiting for handlers in flight")
			return nil
		}
		step(p, hctx, slots, &wg)
	}
}

func releaseSlots(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

// drainContext returns a context for handlers that outlives ctx by grace.
func drainContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-hctx.Done():
			}
		case <-hctx.Done():
		}
	}()
	return hctx, cancel
}

// callHandler runs h; a panic is a Retry.
func callHandler(ctx context.Context, h Handler, msg jetstream.Msg) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = Retry(fmt.Errorf("handler panicked: %v", r))
		}
	}()
	return h(ctx, msg)
}

// handleBatch runs h on msgs and settles what it leaves unsettled with
// Retry (a panic is an error).
func (p *puller) handleBatch(ctx context.Context, h BatchHandler, msgs []jetstream.Msg) {
	var mu sync.Mutex
	settled := make(map[jetstream.Msg]bool, len(msgs))
	settle := func(m jetstream.Msg, o Outcome) {
		mu.Lock()
		again := settled[m]
		settled[m] = true
		mu.Unlock()
		if again {
			p.o.Logger.Error("batch handler settled a message twice; ignoring the second outcome", "subject", m.Subject())
			return
		}
		p.settle(ctx, m, o)
	}
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("batch handler panicked: %v", r)
			}
		}()
		return h(ctx, msgs, settle)
	}()
	if err == nil {
		err = errors.New("batch handler left the message unsettled")
	} else {
		p.o.Logger.Error("batch handler failed; redelivering its unsettled messages", "messages", len(msgs), "error", err)
	}
	for _, m := range msgs {
		mu.Lock()
		done := settled[m]
		mu.Unlock()
		if !done {
			settle(m, Retry(err))
		}
	}
}

// puller fetches from one durable consumer, getting (and recreating) the
// consumer as needed and backing off while the server is unavailable.
type puller struct {
	t    Topology
	js   jetstream.JetStream
	o    ConsumeOptions
	cons jetstream.Consumer
	bo   *backoff.ExponentialBackOff
	// lastProbe is when an idle puller last asked whether its consumer
	// still exists (see idle).
	lastProbe time.Time
}

// probeEvery is how often an idle puller checks that its consumer exists.
const probeEvery = 3 * time.Second

// idle is called after a fetch that returned no message. Servers before
// 2.10 do not tell a pull request that its consumer was deleted: fetches
// just come back empty. So an idle puller asks now and then, and recreates
// the consumer when it is gone.
func (p *puller) idle(ctx context.Context) {
	if p.cons == nil || time.Since(p.lastProbe) < probeEvery || ctx.Err() != nil {
		return
	}
	p.lastProbe = time.Now()
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.cons.Info(ictx); err != nil && ctx.Err() == nil {
		p.fail(ctx, fmt.Errorf("consumer %s on %s: %w", p.o.Durable, p.o.Stream, err))
	}
}

func newPuller(t Topology, js jetstream.JetStream, o ConsumeOptions) *puller {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0 // never give up
	bo.Reset()
	return &puller{t: t, js: js, o: o, bo: bo}
}

// fetch starts a Fetch of up to n messages. It retries (with backoff) until
// it succeeds or ctx ends; ok is false when ctx ended.
func (p *puller) fetch(ctx context.Context, n int) (jetstream.MessageBatch, bool) {
	for ctx.Err() == nil {
		if p.cons == nil {
			c, err := p.t.Consumer(ctx, p.js, p.o.Stream, p.o.Durable)
			if err != nil {
				p.fail(ctx, err)
				continue
			}
			p.cons = c
		}
		b, err := p.cons.Fetch(n, jetstream.FetchMaxWait(p.o.MaxWait))
		if err != nil {
			p.fail(ctx, err)
			continue
		}
		return b, true
	}
	return nil, false
}

// done records how a fetch ended.
func (p *puller) done(ctx context.Context, err error) {
	if err == nil {
		p.bo.Reset()
		return
	}
	if ctx.Err() != nil {
		return
	}
	p.fail(ctx, err)
}

// fail logs a fetch failure, forgets the consumer (it is fetched, or
// recreated, anew) and waits a growing delay.
func (p *puller) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	p.cons = nil
	wait := p.bo.NextBackOff()
	p.o.Logger.Warn("fetch failed; retrying", "error", err, "retry_in", wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// settle settles msg by out (Topology.Settle).
func (p *puller) settle(ctx context.Context, msg jetstream.Msg, out Outcome) {
	p.t.Settle(ctx, p.js, p.o, msg, out)
}
