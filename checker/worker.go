package checker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Event kinds (CloudEvents type suffixes) the worker publishes.
const (
	eventKindChanged = "domains.changed"
	eventKindChecked = "domains.checked"
)

// publishTimeout bounds publishing an event and acknowledging its check,
// which still happen after shutdown began.
const publishTimeout = 20 * time.Second

// Worker consumes check requests; see the package doc. Create it with
// NewWorker and start it with Run.
type Worker struct {
	cfg      Config
	metrics  *metrics
	limiters *rateLimiters
	stream   string // namespaced DOMAIN_CHECKS
}

// NewWorker validates cfg (after WithDefaults) and registers the metrics.
func NewWorker(cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	onPause := func(key string, until time.Time) {
		m.pausedUntil.WithLabelValues(key).Set(float64(until.Unix()))
		cfg.Logger.Warn("lookup server paused by its Retry-After; its checks go back to the queue until then", "server", key, "until", until)
	}
	return &Worker{
		cfg:      cfg,
		metrics:  m,
		limiters: newRateLimiters(cfg.LookupsPerSecond, cfg.Burst, cfg.RetryMax, onPause),
		stream:   cfg.Topology.Namespace.Stream(schemas.StreamDomainChecks),
	}, nil
}

// Run consumes checks until ctx is cancelled, then lets in-flight checks
// finish (or hands them back) and returns nil. It survives the consumer
// being deleted and the server restarting (broker.Topology.Run).
func (w *Worker) Run(ctx context.Context) error {
	w.cfg.Logger.Info("checker started", "provider", w.cfg.Provider.Name(), "concurrency", w.cfg.Concurrency,
		"lookups_per_second", w.cfg.LookupsPerSecond, "burst", w.cfg.Burst, "stream", w.stream)
	err := w.cfg.Topology.Run(ctx, w.cfg.JS, w.consumeOptions(), w.handle)
	if err != nil {
		return fmt.Errorf("checker: %w", err)
	}
	w.cfg.Logger.Info("checker stopped")
	return nil
}

// consumeOptions are the checker consumer's options: a check is acked
// with a confirmed ack (its event is out; a redelivery republishes the
// same id, which the duplicate window drops), and dead letters are
// counted.
func (w *Worker) consumeOptions() broker.ConsumeOptions {
	return broker.ConsumeOptions{
		Stream:     schemas.StreamDomainChecks,
		Durable:    broker.ConsumerChecker,
		Batch:      w.cfg.Concurrency,
		Workers:    w.cfg.Concurrency,
		MaxWait:    w.cfg.FetchWait,
		MaxDeliver: w.cfg.Topology.CheckMaxDeliver,
		ConfirmAck: true,
		Logger:     w.cfg.Logger,
		OnSettled: func(_ jetstream.Msg, s broker.Settlement, _ broker.Outcome) {
			if s == broker.DeadLettered {
				w.metrics.deadLetters.Inc()
			}
		},
	}
}

// handle works on one check message and returns how it went: Done once
// its event is published, Permanent for bad input, Retry when publishing
// failed, Release when shutdown interrupted the lookup.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) broker.Outcome {
	meta, err := msg.Metadata()
	if err != nil {
		return broker.Retry(fmt.Errorf("check on %s: metadata: %w", msg.Subject(), err))
	}
	_, req, err := schemas.Decode[schemas.CheckRequest](msg.Data())
	if err != nil {
		return broker.Permanent(fmt.Errorf("check request: %w", err))
	}
	// A name under a private suffix is checked as itself, never reduced to
	// its registrable domain (a separate domains row watches that).
	domain, nameErr := checkName(w.cfg.Provider, req.Domain)
	if nameErr != nil && !errors.Is(nameErr, ErrNoSource) {
		return broker.Permanent(fmt.Errorf("%w: check request domain: %v", schemas.ErrInvalid, nameErr))
	}

	// Kept alive through the lookup and the publish (which retries through
	// a stream leader election), so the check is not redelivered meanwhile.
	stop := w.keepAlive(msg)
	defer stop()
	var (
		obs       lifecycle.Observation
		lookupErr = nameErr
	)
	if nameErr == nil {
		obs, lookupErr = w.lookup(ctx, domain, req.Previous)
	}

	// From here on the work is done: publish even if shutdown has begun.
	pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	log := w.cfg.Logger.With("domain", domain, "sequence", meta.Sequence.Stream, "delivery", meta.NumDelivered)
	pub := eventPublisher{w: w, meta: meta, domain: domain}
	switch {
	case lookupErr != nil && ctx.Err() != nil:
		// Shutting down mid-lookup: hand the check to another worker now.
		return broker.Release(fmt.Errorf("check of %s interrupted by shutdown: %w", domain, lookupErr))
	case errors.As(lookupErr, new(*pausedError)):
		return w.park(pubCtx, msg, pub, req.Previous, lookupErr)
	case errors.Is(lookupErr, ErrNoSource):
		log.Info("domain unmonitored: no evidence source for its TLD", "detail", lookupErr)
		return pub.noDecision(pubCtx, req.Previous, kindUnmonitored, lookupErr.Error())
	case errors.Is(lookupErr, ErrLookupRefused):
		log.Warn("lookup refused: its server is at a non-public address; publishing failed heartbeat", "error", lookupErr)
		return pub.failed(pubCtx, req.Previous, lookupErr.Error())
	case IsPermanent(lookupErr):
		return broker.Permanent(lookupErr)
	case lookupErr != nil:
		log.Warn("lookup failed; publishing failed heartbeat", "error", lookupErr)
		return pub.failed(pubCtx, req.Previous, lookupErr.Error())
	case !obs.Phase.Known():
		log.Info("lookup inconclusive", "detail", obs.Evidence.Detail)
		detail := obs.Evidence.Detail
		if detail == "" {
			detail = "provider " + obs.Evidence.Provider + " gave no decision"
		}
		return pub.failed(pubCtx, req.Previous, detail)
	case lifecycle.Changed(req.Previous, obs):
		changed := schemas.DomainChanged{
			Domain:        domain,
			PreviousPhase: lifecycle.PhaseUnknown,
			Phase:         obs.Phase,
			Evidence:      obs.Evidence,
		}
		if req.Previous != nil {
			changed.PreviousPhase = req.Previous.Phase
			if prevEv := req.Previous.Evidence; prevEv.Provider != "" {
				// A previous phase without evidence (never looked up with
				// its evidence kept) has none to carry.
				changed.PreviousEvidence = &prevEv
			}
		}
		if lifecycle.ReleasedWithoutLapse(req.Previous, obs.Phase) {
			w.metrics.releasedJumps.Inc()
			log.Warn("released straight from active, no lapse seen in between", "server", obs.Evidence.Server)
		}
		log.Info("domain changed", "previous_phase", changed.PreviousPhase, "phase", obs.Phase)
		return pub.publish(pubCtx, kindChanged, obs.Evidence.ObservedAt, changed)
	default:
		checked := schemas.DomainChecked{Domain: domain, Phase: obs.Phase, ObservedAt: obs.Evidence.ObservedAt}
		return pub.publish(pubCtx, kindChecked, obs.Evidence.ObservedAt, checked)
	}
}

// park hands a check whose lookup server is paused back to the queue
// (broker.RetryAfter the pause), to be delivered again when the pause
// ends, so it holds no worker meanwhile. On the check's last delivery it
// publishes a failed heartbeat instead: the scheduler then retries the
// domain later, as after any failed lookup.
func (w *Worker) park(ctx context.Context, msg jetstream.Msg, pub eventPublisher, prev *lifecycle.Observation, lookupErr error) broker.Outcome {
	var paused *pausedError
	errors.As(lookupErr, &paused)
	if w.cfg.Topology.IsLastDelivery(msg, w.cfg.Topology.CheckMaxDeliver) {
		return pub.failed(ctx, prev, lookupErr.Error())
	}
	w.metrics.parked.Inc()
	return broker.RetryAfter(paused.Remaining, fmt.Errorf("park check of %s while %s is paused: %w", pub.domain, paused.Key, lookupErr))
}

// eventPublisher publishes the event of one check message.
type eventPublisher struct {
	w      *Worker
	meta   *jetstream.MsgMetadata
	domain string
}

// failed publishes a Failed heartbeat: the phase stays the previous one
// (or unknown), never a phase derived from an error.
func (p eventPublisher) failed(ctx context.Context, prev *lifecycle.Observation, detail string) broker.Outcome {
	return p.noDecision(ctx, prev, kindFailed, detail)
}

// noDecision publishes a heartbeat of kind kindFailed or kindUnmonitored
// (no source of evidence covers the domain's TLD) with the previous phase
// (or unknown).
func (p eventPublisher) noDecision(ctx context.Context, prev *lifecycle.Observation, kind, detail string) broker.Outcome {
	phase := lifecycle.PhaseUnknown
	if prev != nil && prev.Phase.Valid() {
		phase = prev.Phase
	}
	if len(detail) > 1024 {
		detail = detail[:1024]
	}
	now := p.w.cfg.Clock.Now().UTC()
	hb := schemas.DomainChecked{Domain: p.domain, Phase: phase, ObservedAt: now,
		Failed: kind == kindFailed, Unmonitored: kind == kindUnmonitored, Detail: detail}
	return p.publish(ctx, kind, now, hb)
}

// publish sends one event of kind (kindChanged on domains.changed.<d>,
// else domains.checked.<d>) with an id derived from the check message;
// Done when it is out.
func (p eventPublisher) publish(ctx context.Context, kind string, at time.Time, payload schemas.Payload) broker.Outcome {
	w := p.w
	eventKind, subject := eventKindChecked, w.cfg.Topology.Namespace.CheckedSubject(p.domain)
	if kind == kindChanged {
		eventKind, subject = eventKindChanged, w.cfg.Topology.Namespace.ChangedSubject(p.domain)
	}
	id := schemas.DerivedID(p.meta.Timestamp, w.stream, strconv.FormatUint(p.meta.Sequence.Stream, 10), p.domain, kind)
	ev, err := schemas.NewEventWithID(id, w.cfg.Source, eventKind, p.domain, at, payload)
	if err != nil {
		// The provider's answer cannot form a valid event; retrying gives
		// the same answer.
		return broker.Permanent(fmt.Errorf("build event for %s: %w", p.domain, err))
	}
	// A failed publish (a stream leader election takes several seconds) is
	// retried here, with the same event id, rather than by redelivering the
	// check: that would repeat the provider lookup and spend its quota.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 250*time.Millisecond, 4*time.Second, 15*time.Second
	err = backoff.Retry(func() error {
		_, err := broker.PublishEvent(ctx, w.cfg.JS, subject, ev)
		return err
	}, backoff.WithContext(bo, ctx))
	if err != nil {
		return broker.Retry(fmt.Errorf("publish %s event for %s: %w", kind, p.domain, err))
	}
	w.metrics.published.WithLabelValues(kind).Inc()
	return broker.Done()
}

// keepAlive reports the message in progress every ProgressEvery until the
// returned stop is called.
func (w *Worker) keepAlive(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(w.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					w.cfg.Logger.Debug("in-progress report failed", "subject", msg.Subject(), "error", err)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// errRetriesExhausted marks a transient failure that outlasted the
// in-process retries.
var errRetriesExhausted = errors.New("retries exhausted")

// lookup asks the provider, waiting on the rate limiter before every
// attempt and retrying transient failures with backoff. Errors: permanent
// lookup errors as they are; transient ones wrapped with
// errRetriesExhausted; ctx errors on cancellation.
func (w *Worker) lookup(ctx context.Context, domain string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	p := w.cfg.Provider
	key := rateKey(p, domain)
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     w.cfg.RetryInitial,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         w.cfg.RetryMax,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	bo.Reset()
	start := time.Now()
	exempt := rateExempt(p, domain)
	for attempt := 1; ; attempt++ {
		if !exempt {
			waited, err := w.limiters.wait(ctx, key)
			w.metrics.rateLimitWait.Observe(waited.Seconds())
			if err != nil {
				return lifecycle.Observation{}, fmt.Errorf("rate limit wait for %s: %w", domain, err)
			}
		}
		obs, err := w.attempt(ctx, domain, prev)
		if err == nil {
			return obs, nil
		}
		if IsPermanent(err) || errors.Is(err, ErrNoSource) || errors.Is(err, ErrLookupRefused) || ctx.Err() != nil {
			return lifecycle.Observation{}, err
		}
		retryAfter := min(RetryAfter(err), MaxRetryAfter)
		w.limiters.pause(key, retryAfter)
		if retryAfter > w.cfg.RetryMax {
			// Too long to wait here: the check goes back to the queue.
			return lifecycle.Observation{}, &pausedError{Key: key, Remaining: retryAfter}
		}
		if attempt >= w.cfg.MaxAttempts {
			return lifecycle.Observation{}, fmt.Errorf("%w after %d attempts: %w", errRetriesExhausted, attempt, err)
		}
		delay := max(bo.NextBackOff(), retryAfter)
		if time.Since(start)+delay > w.cfg.MaxElapsed {
			return lifecycle.Observation{}, fmt.Errorf("%w after %d attempts (next wait %s would exceed %s): %w",
				errRetriesExhausted, attempt, delay.Round(time.Millisecond), w.cfg.MaxElapsed, err)
		}
		w.metrics.retries.Inc()
		w.cfg.Logger.Debug("lookup failed; retrying", "domain", domain, "attempt", attempt, "wait", delay, "error", err)
		if err := sleep(ctx, delay); err != nil {
			return lifecycle.Observation{}, fmt.Errorf("retry wait for %s: %w", domain, err)
		}
	}
}

// attempt is one provider lookup with its timeout and metrics.
func (w *Worker) attempt(ctx context.Context, domain string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	p := w.cfg.Provider
	actx, cancel := context.WithTimeout(ctx, w.cfg.LookupTimeout)
	defer cancel()
	start := time.Now()
	obs, err := p.Lookup(actx, domain, prev)
	w.metrics.lookupDuration.WithLabelValues(p.Name()).Observe(time.Since(start).Seconds())
	outcome := outcomeOK
	switch {
	case errors.Is(err, ErrLookupRefused):
		outcome = outcomeRefused
	case err != nil && IsPermanent(err):
		outcome = outcomePermanent
	case err != nil:
		outcome = outcomeTemporary
	default:
		fillObservation(&obs, domain, p.Name(), w.cfg.Clock.Now().UTC())
		if !obs.Phase.Known() {
			outcome = outcomeUnknown
		}
	}
	w.metrics.lookups.WithLabelValues(p.Name(), outcome).Inc()
	if err != nil {
		return lifecycle.Observation{}, err
	}
	return obs, nil
}
