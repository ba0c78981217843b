package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/schemas"
)

// Durable consumer names, one per role.
const (
	// ConsumerIntake reads host events from ACCOUNTS (accounts.>).
	ConsumerIntake = "producer-intake"
	// ConsumerChecker reads check requests from DOMAIN_CHECKS (domains.check.>).
	ConsumerChecker = "checker"
	// ConsumerEnforcer reads changes and heartbeats from DOMAIN_EVENTS (domains.>).
	ConsumerEnforcer = "enforcer"
)

// Consumer sizing that is not configurable: how many messages each role may
// hold unacknowledged across all its workers and processes.
const (
	checkerMaxAckPending  = 1000
	intakeMaxAckPending   = 1000
	enforcerMaxAckPending = 1000
)

// Topology declares domainguard's streams and durable pull consumers. The
// zero value, after WithDefaults, is the single-node production topology of
// DESIGN.md §6.
type Topology struct {
	// Namespace prefixes every stream and subject (tests, multi-tenant
	// accounts). Default: none.
	Namespace schemas.Namespace
	// Replicas of every stream and consumer. Default 1; 3 in a cluster.
	Replicas int
	// Storage of every stream. Default jetstream.FileStorage (the zero value).
	Storage jetstream.StorageType
	// DuplicateWindow is the Nats-Msg-Id de-duplication window. Default 2m.
	DuplicateWindow time.Duration
	// Maximum ages of the limits-retention streams. Defaults: events 14d,
	// audit 90d, dead letters 90d, accounts 14d.
	EventsMaxAge, AuditMaxAge, DLQMaxAge, AccountsMaxAge time.Duration
	// ChecksMaxAge is the maximum age of a check request in DOMAIN_CHECKS:
	// about the producer's check lease (6h), after which the sweep
	// enqueues the domain again anyway. It removes checks a server crash
	// stranded below the consumer's ack floor. Default 6h.
	ChecksMaxAge time.Duration
	// Message limits of the streams (MaxMsgs), so that no stream grows
	// without bound. Counts, not bytes: a stream's MaxBytes reserves that
	// much of the server's max_file_store when the stream is created, so
	// byte limits large enough for production would not fit next to each
	// other on a small server; the bytes are bounded by the count times
	// the largest message (schemas.MaxMessageBytes for what the consumers
	// accept, max_payload for what the server takes). Defaults:
	// DefaultAccountsMaxMsgs, DefaultEventsMaxMsgs, DefaultAuditMaxMsgs,
	// DefaultDLQMaxMsgs, DefaultChecksMaxMsgs.
	//
	// ACCOUNTS, DOMAIN_EVENTS, AUDIT and DOMAIN_CHECKS refuse new messages
	// when full (DiscardNew): a full stream must not drop work nobody has
	// processed yet, so the publisher gets an error and retries (the host
	// API answers 503, the checker naks the check, the outbox relay keeps
	// the row). The DLQ drops its oldest letters instead (DiscardOld): a
	// refused dead letter would keep a poison message in its stream.
	AccountsMaxMsgs, EventsMaxMsgs, AuditMaxMsgs, DLQMaxMsgs, ChecksMaxMsgs int64
	// CheckAckWait is the checker consumer's ack wait: one lookup, rate
	// limiting included, must finish within it. Default 2m.
	CheckAckWait time.Duration
	// CheckMaxDeliver is how often a check is delivered before the server
	// gives up on it (the checker dead-letters on the last delivery).
	// Default 20.
	CheckMaxDeliver int
	// EventAckWait is the ack wait of the intake and enforcer consumers.
	// Default 1m.
	EventAckWait time.Duration
	// EventMaxDeliver is the max deliveries of the intake and enforcer
	// consumers. Default 20.
	EventMaxDeliver int
	// Logger receives topology warnings. Default slog.Default().
	Logger *slog.Logger
	// Clock stamps dead letters. Default clock.System.
	Clock clock.Clock
	// VerifyOnly says the topology belongs to an operator (`domainguard
	// topology`; DOMAINGUARD_MANAGE_TOPOLOGY=false): Prepare only checks
	// that the streams exist and Consumer never creates or updates a stream
	// or consumer, so the role's NATS user needs no permission to manage
	// them. Default false: Prepare and Consumer create what is missing.
	VerifyOnly bool
}

// Defaults of Topology that the configuration exposes
// (DOMAINGUARD_STREAM_REPLICAS, DOMAINGUARD_CHECK_ACK_WAIT,
// DOMAINGUARD_EVENT_ACK_WAIT).
const (
	DefaultReplicas     = 1
	DefaultCheckAckWait = 2 * time.Minute
	DefaultEventAckWait = time.Minute
)

// Default message limits of the streams (Topology.*MaxMsgs), sized for
// about a million watched addresses with room to spare: ACCOUNTS keeps 14
// days of host events (a bulk onboarding of every user fits), DOMAIN_EVENTS
// 14 days of heartbeats and changes (one per check), AUDIT 90 days of
// audit events, the DLQ 90 days of dead letters, DOMAIN_CHECKS one pending
// check per domain. The stream-usage alert (DomainguardStreamNearLimit)
// fires at 80 %.
const (
	DefaultAccountsMaxMsgs int64 = 5_000_000
	DefaultEventsMaxMsgs   int64 = 10_000_000
	DefaultAuditMaxMsgs    int64 = 10_000_000
	DefaultDLQMaxMsgs      int64 = 1_000_000
	DefaultChecksMaxMsgs   int64 = 5_000_000
)

// WithDefaults returns t with every unset field at its documented default.
func (t Topology) WithDefaults() Topology {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	if t.Replicas == 0 {
		t.Replicas = DefaultReplicas
	}
	setDur(&t.DuplicateWindow, 2*time.Minute)
	setDur(&t.EventsMaxAge, 14*24*time.Hour)
	setDur(&t.AuditMaxAge, 90*24*time.Hour)
	setDur(&t.DLQMaxAge, 90*24*time.Hour)
	setDur(&t.AccountsMaxAge, 14*24*time.Hour)
	setDur(&t.ChecksMaxAge, 6*time.Hour)
	setCount := func(n *int64, def int64) {
		if *n == 0 {
			*n = def
		}
	}
	setCount(&t.AccountsMaxMsgs, DefaultAccountsMaxMsgs)
	setCount(&t.EventsMaxMsgs, DefaultEventsMaxMsgs)
	setCount(&t.AuditMaxMsgs, DefaultAuditMaxMsgs)
	setCount(&t.DLQMaxMsgs, DefaultDLQMaxMsgs)
	setCount(&t.ChecksMaxMsgs, DefaultChecksMaxMsgs)
	setDur(&t.CheckAckWait, DefaultCheckAckWait)
	setDur(&t.EventAckWait, DefaultEventAckWait)
	if t.CheckMaxDeliver == 0 {
		t.CheckMaxDeliver = 20
	}
	if t.EventMaxDeliver == 0 {
		t.EventMaxDeliver = 20
	}
	if t.Logger == nil {
		t.Logger = slog.Default()
	}
	if t.Clock == nil {
		t.Clock = clock.System{}
	}
	return t
}

// Validate reports the first setting that cannot work. Call it on the
// result of WithDefaults.
func (t Topology) Validate() error {
	if p := t.Namespace.Prefix; p != "" {
		if strings.ContainsAny(p, " \t\r\n*>") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
			return fmt.Errorf("topology: namespace prefix %q is not a valid subject prefix", p)
		}
	}
	if t.Replicas < 1 || t.Replicas > 5 {
		return fmt.Errorf("topology: replicas %d is not between 1 and 5", t.Replicas)
	}
	if t.Storage != jetstream.FileStorage && t.Storage != jetstream.MemoryStorage {
		return fmt.Errorf("topology: unknown storage type %d", t.Storage)
	}
	for _, a := range []struct {
		name string
		d    time.Duration
	}{{"events max age", t.EventsMaxAge}, {"audit max age", t.AuditMaxAge}, {"dlq max age", t.DLQMaxAge}, {"accounts max age", t.AccountsMaxAge},
		{"checks max age", t.ChecksMaxAge}} {
		if a.d <= 0 {
			return fmt.Errorf("topology: %s %s must be positive", a.name, a.d)
		}
		if t.DuplicateWindow > a.d {
			return fmt.Errorf("topology: duplicate window %s exceeds %s %s", t.DuplicateWindow, a.name, a.d)
		}
	}
	for _, l := range []struct {
		name string
		n    int64
	}{{"accounts", t.AccountsMaxMsgs}, {"events", t.EventsMaxMsgs}, {"audit", t.AuditMaxMsgs}, {"dlq", t.DLQMaxMsgs}, {"checks", t.ChecksMaxMsgs}} {
		if l.n < 1 {
			return fmt.Errorf("topology: %s max messages %d must be positive", l.name, l.n)
		}
	}
	if t.DuplicateWindow <= 0 {
		return fmt.Errorf("topology: duplicate window %s must be positive", t.DuplicateWindow)
	}
	if t.CheckAckWait < time.Second || t.EventAckWait < time.Second {
		return fmt.Errorf("topology: ack waits (check %s, event %s) must be at least 1s", t.CheckAckWait, t.EventAckWait)
	}
	if t.CheckMaxDeliver < 1 || t.EventMaxDeliver < 1 {
		return fmt.Errorf("topology: max deliver (check %d, event %d) must be at least 1", t.CheckMaxDeliver, t.EventMaxDeliver)
	}
	return nil
}

// Streams returns the stream configurations, namespace applied.
func (t Topology) Streams() []jetstream.StreamConfig {
	t = t.WithDefaults()
	ns := t.Namespace
	limits := func(name, desc string, maxAge time.Duration, maxMsgs int64, discard jetstream.DiscardPolicy, subjects ...string) jetstream.StreamConfig {
		for i, s := range subjects {
			subjects[i] = ns.Subject(s)
		}
		return jetstream.StreamConfig{
			Name:        ns.Stream(name),
			Description: desc,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy,
			Discard:     discard,
			MaxAge:      maxAge,
			MaxMsgs:     maxMsgs,
			Storage:     t.Storage,
			Replicas:    t.Replicas,
			Duplicates:  t.DuplicateWindow,
		}
	}
	checks := jetstream.StreamConfig{
		Name:        ns.Stream(schemas.StreamDomainChecks),
		Description: "domainguard check requests: work queue, at most one pending per domain",
		Subjects:    []string{ns.Subject(schemas.SubjectChecksAll)},
		Retention:   jetstream.WorkQueuePolicy,
		// One pending check per domain subject; a second publish is refused
		// (IsAlreadyPending) instead of replacing the pending one.
		MaxMsgsPerSubject:    1,
		MaxMsgs:              t.ChecksMaxMsgs,
		MaxAge:               t.ChecksMaxAge,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Storage:              t.Storage,
		Replicas:             t.Replicas,
		Duplicates:           t.DuplicateWindow,
	}
	return []jetstream.StreamConfig{
		limits(schemas.StreamAccounts, "domainguard intake: host account events", t.AccountsMaxAge, t.AccountsMaxMsgs,
			jetstream.DiscardNew, schemas.SubjectAccountsAll),
		checks,
		limits(schemas.StreamDomainEvents, "domainguard domain changes and check heartbeats", t.EventsMaxAge, t.EventsMaxMsgs,
			jetstream.DiscardNew, schemas.SubjectDomainEventsChanged, schemas.SubjectDomainEventsChecked),
		limits(schemas.StreamAudit, "domainguard audit events", t.AuditMaxAge, t.AuditMaxMsgs,
			jetstream.DiscardNew, schemas.SubjectAuditAll),
		limits(schemas.StreamDLQ, "domainguard dead letters", t.DLQMaxAge, t.DLQMaxMsgs,
			jetstream.DiscardOld, schemas.SubjectDeadLetterAll),
	}
}

// Consumers returns the durable pull consumers, keyed by the namespaced
// stream name.
func (t Topology) Consumers() map[string][]jetstream.ConsumerConfig {
	t = t.WithDefaults()
	ns := t.Namespace
	pull := func(durable, desc, filter string, ackWait time.Duration, maxDeliver, maxAckPending int) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{
			Durable:       durable,
			Description:   desc,
			FilterSubject: ns.Subject(filter),
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       ackWait,
			MaxDeliver:    maxDeliver,
			MaxAckPending: maxAckPending,
			ReplayPolicy:  jetstream.ReplayInstantPolicy,
			Replicas:      t.Replicas,
			MemoryStorage: t.Storage == jetstream.MemoryStorage,
		}
	}
	return map[string][]jetstream.ConsumerConfig{
		ns.Stream(schemas.StreamAccounts): {pull(ConsumerIntake, "producer: host account events",
			schemas.SubjectAccountsAll, t.EventAckWait, t.EventMaxDeliver, intakeMaxAckPending)},
		ns.Stream(schemas.StreamDomainChecks): {pull(ConsumerChecker, "checker: domain lookups",
			schemas.SubjectChecksAll, t.CheckAckWait, t.CheckMaxDeliver, checkerMaxAckPending)},
		ns.Stream(schemas.StreamDomainEvents): {pull(ConsumerEnforcer, "enforcer: domain changes and heartbeats",
			"domains.>", t.EventAckWait, t.EventMaxDeliver, enforcerMaxAckPending)},
	}
}

// Ensure creates or updates every stream and consumer. It is idempotent and
// safe to run from several processes at once. It never lowers the replica
// count of an existing stream: scaling down is an operator's decision, so it
// logs a warning and keeps the existing count.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return err
	}
	for _, cfg := range t.Streams() {
		if err := t.ensureStream(ctx, js, cfg); err != nil {
			return err
		}
	}
	for stream, consumers := range t.Consumers() {
		for _, cfg := range consumers {
			if _, err := js.CreateOrUpdateConsumer(ctx, stream, cfg); err != nil {
				return fmt.Errorf("ensure consumer %s on stream %s: %w", cfg.Durable, stream, err)
			}
		}
	}
	return nil
}

// Verify checks that every stream of the topology exists, without
// creating or changing anything: what a role does on start when it may not
// manage the topology (DOMAINGUARD_MANAGE_TOPOLOGY=false), so that its NATS
// user needs no stream create/update permission. An operator creates the
// topology with `domainguard topology`. Each role's own durable consumer is
// looked up when it starts consuming. With streams (unprefixed names) it
// checks only those: a client of one stream needs permission for no other.
func (t Topology) Verify(ctx context.Context, js jetstream.JetStream, streams ...string) error {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return err
	}
	var missing []string
	for _, cfg := range t.Streams() {
		if len(streams) > 0 && !slices.ContainsFunc(streams, func(s string) bool { return t.Namespace.Stream(s) == cfg.Name }) {
			continue
		}
		_, err := js.Stream(ctx, cfg.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			missing = append(missing, cfg.Name)
		case err != nil:
			return fmt.Errorf("look up stream %s: %w", cfg.Name, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("streams %s do not exist: create the topology with `domainguard topology` (as a NATS user allowed to manage streams), or let this role manage it (DOMAINGUARD_MANAGE_TOPOLOGY=true)", strings.Join(missing, ", "))
	}
	return nil
}

// Prepare readies the topology for a role: Verify when VerifyOnly is set,
// Ensure otherwise.
func (t Topology) Prepare(ctx context.Context, js jetstream.JetStream) error {
	if t.VerifyOnly {
		return t.Verify(ctx, js)
	}
	return t.Ensure(ctx, js)
}

func (t Topology) ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		} else if err == nil {
			return nil
		}
		// Another process created it meanwhile: fall through to update.
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	default:
		if have := s.CachedInfo().Config.Replicas; have > cfg.Replicas {
			t.Logger.Warn("stream has more replicas than configured; keeping them (lower them by hand if intended)",
				"stream", cfg.Name, "replicas", have, "configured", cfg.Replicas)
			cfg.Replicas = have
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("update stream %s: %w", cfg.Name, err)
	}
	return nil
}

// Consumer returns the durable consumer of the (unprefixed) stream,
// recreating it, and the stream if need be, when it was deleted. With
// VerifyOnly it recreates nothing: a missing consumer or stream is an error
// that says how the operator creates it.
func (t Topology) Consumer(ctx context.Context, js jetstream.JetStream, stream, durable string) (jetstream.Consumer, error) {
	t = t.WithDefaults()
	name := t.Namespace.Stream(stream)
	c, err := js.Consumer(ctx, name, durable)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("get consumer %s on stream %s: %w", durable, name, err)
	}
	var cfg *jetstream.ConsumerConfig
	for _, cc := range t.Consumers()[name] {
		if cc.Durable == durable {
			cfg = &cc
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("consumer %s on stream %s is not part of the topology", durable, name)
	}
	if t.VerifyOnly {
		return nil, fmt.Errorf("consumer %s on stream %s: %w: create the topology with `domainguard topology` (as a NATS user allowed to manage streams), or let this role manage it (DOMAINGUARD_MANAGE_TOPOLOGY=true)", durable, name, err)
	}
	t.Logger.Warn("consumer or stream missing; recreating the topology", "stream", name, "consumer", durable, "error", err)
	if err := t.Ensure(ctx, js); err != nil {
		return nil, err
	}
	c, err = js.Consumer(ctx, name, durable)
	if err != nil {
		return nil, fmt.Errorf("get consumer %s on stream %s after recreating it: %w", durable, name, err)
	}
	return c, nil
}

// IsAlreadyPending reports whether a publish to domains.check.<domain> was
// refused because a check for that domain is still pending in the work
// queue (maximum messages per subject exceeded, discard new per subject).
// Callers treat it as success: the pending check will do.
func IsAlreadyPending(err error) bool {
	var apiErr *jetstream.APIError
	if err == nil || !errors.As(err, &apiErr) {
		return false
	}
	return strings.Contains(strings.ToLower(apiErr.Description), "maximum messages per subject exceeded")
}
