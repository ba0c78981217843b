// Package checker is the stateless lookup role (DESIGN.md §2, §6): a Worker
// pulls check requests from the DOMAIN_CHECKS work queue
// (domains.check.<domain>), looks the domain up through a Provider,
// classifies the answer into a phase, and publishes
//   - domains.changed.<domain> when the phase or the evidence that matters
//     differs from the previous observation carried in the request
//     (lifecycle.Changed), else
//   - a domains.checked.<domain> heartbeat; with Failed set when the lookup
//     failed after its in-process retries or the answer was inconclusive
//     (phase unknown), so the enforcer retries on its growing-delay schedule
//     instead of marking the domain checked.
//
// Workers hold no state beyond rate limiters and scale horizontally: any
// number of processes share the durable "checker" consumer.
//
// Rules the worker keeps:
//   - A lookup error is never published as a phase (and never as released):
//     errors become Failed heartbeats or dead letters; only a provider's
//     observation carries a phase, and unknown never changes anything.
//   - Lookups are rate limited per rate key with a token bucket
//     (golang.org/x/time/rate): the provider's RateKey(domain) when it
//     implements RateKeyer (RDAP: the server host), else the provider name.
//     A Retry-After from a provider also pauses every lookup on that key.
//   - Transient failures (timeouts, 5xx, 429) are retried in process with
//     exponential backoff (github.com/cenkalti/backoff/v4), waiting at least
//     the provider's Retry-After, up to MaxAttempts tries within MaxElapsed.
//     While a check is being worked on (rate-limit wait, lookup, backoff) the
//     worker calls InProgress on the message every ProgressEvery, so the
//     server does not redeliver it under a live worker.
//   - When in-process retries are exhausted the worker publishes a Failed
//     heartbeat and acknowledges the check (rather than Nak with delay): the
//     enforcer then schedules the retry with lifecycle.RetryAfterFailure
//     (about 1h, 4h, 1 day), and the domain's single pending-check slot in
//     the work queue is free for a manual check meanwhile.
//   - A provider without any source of evidence for the TLD (ErrNoSource)
//     gets an unmonitored heartbeat: no retries; the enforcer marks the
//     domain unmonitored and retries it weekly.
//   - Permanent failures (invalid domain, the provider says the name or zone
//     cannot exist) and undecodable requests are dead-lettered, which also
//     removes them from the work queue.
//   - Event ids are derived from the check message (schemas.DerivedID over
//     stream, sequence, domain and event kind, timestamped with the check's
//     stream time), and the check is acknowledged only after JetStream has
//     acknowledged the event: a redelivered check that gets the same answer
//     publishes the same id, which JetStream's duplicate window drops.
//   - Pull sizing: the worker fetches at most Concurrency messages at a time
//     (broker.Topology.Run), never Consume's 500-message prefetch, so no
//     fetched check waits in a buffer while its ack wait runs out.
//   - On shutdown (ctx cancelled) checks whose lookup was cut short are
//     Nak'ed without delay for another worker; a finished lookup is still
//     published and acknowledged.
//
// Metrics (registered on Config.Registerer):
//
//	domainguard_checker_lookups_total{provider,outcome}   counter; outcome: ok, unknown, temporary_error, permanent_error
//	domainguard_checker_lookup_duration_seconds{provider} histogram, per lookup attempt
//	domainguard_checker_rate_limit_wait_seconds           histogram, time spent waiting for the rate limiter
//	domainguard_checker_retries_total                     counter, in-process lookup retries
//	domainguard_checker_events_published_total{kind}      counter; kind: changed, checked, failed, unmonitored
//	domainguard_checker_dead_letters_total                counter, checks dead-lettered
package checker
