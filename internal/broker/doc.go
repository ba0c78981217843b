// Package broker is domainguard's NATS JetStream plumbing (DESIGN.md §5, §6):
// the stream and consumer topology declared in code and ensured
// idempotently at start (Topology.Ensure), connecting with logged
// disconnects and asynchronous errors (Connect), an in-process JetStream
// server for `domainguard run` without NATS_URL (StartEmbedded), a resilient
// pull loop every role shares (Topology.Run, Topology.RunBatch), the one
// settle policy (settle.go), dead lettering (Topology.DeadLetter), event
// publishing (PublishEvent) and the one builder of the NATS messages
// domainguard publishes (Message, EventMessage: Nats-Msg-Id and
// Content-Type set the same way by every role and command).
//
// Settle policy: handlers never ack, nak or dead-letter. They return an
// Outcome — Done, Retry, RetryAfter(d), Permanent or Release (OutcomeOf
// maps an error: nil is Done, schemas.ErrInvalid Permanent, the rest Retry)
// — and Topology.Settle applies it the same way for every role: Done acks
// (confirmed with ConsumeOptions.ConfirmAck); Retry naks with a delay that
// doubles per delivery from NakDelay up to 1 minute, RetryAfter with the
// given delay, and both dead-letter on the consumer's last delivery;
// Permanent dead-letters at once; Release naks for immediate redelivery. A
// dead letter that cannot be published is nak'd with the growing delay.
//
// Everything works against nats-server 2.9 as well as current servers: the
// topology uses no option newer than 2.9.0 (no FilterSubjects, metadata,
// compression or consumer limits).
//
// Pull sizing: roles never use Consume's default 500-message prefetch.
// Run fetches at most as many messages as it has idle workers, so every
// fetched message starts being handled at once and only needs to finish
// within the consumer's ack wait; nothing waits in a client buffer while its
// ack wait runs out (which would deliver it a second time to another worker).
package broker
