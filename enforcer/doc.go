// Package enforcer applies the decision rules of DESIGN.md §3 to the
// emails table: it consumes domains.changed.> and domains.checked.> from
// DOMAIN_EVENTS, decides with lifecycle.Decide (the only place the rules
// live), and emits audit events through a transactional outbox.
//
// # Enforcing a change
//
// The domains.changed events of a fetched batch are enforced in groups
// (Config.Group, whole domains), each group in one transaction
// (Store.EnforceChangedGroup), set-based: each step is one statement (or
// one pipelined batch) for every event of the group, so a group costs
// about as many round trips as one event. The steps (enforceChanges):
// openChanges inserts the message ids (the CloudEvent ids) into
// processed_messages (an id seen before makes its event a duplicate that
// changes nothing), creates the missing domains rows and locks them FOR
// UPDATE in name order (replicas enforce one domain one event at a time
// and cannot deadlock), and loads the domains' addresses; decide runs
// lifecycle.Decide per event; applyDecisions records every observation in
// domain_observations (applied or not), consults the breaker, unverifies
// the affected verified addresses of every event with one multi-row
// UPDATE, updates the domains (a newer observation updates the domain and
// schedules its next check) and writes one audit_log row and one outbox
// row per emitted event, with ids derived from the input event id
// (schemas.DerivedID), so reprocessing yields the same ids. While the
// enforcer runs, the outbox rows of an enforcing statement are an outbox
// batch (see "Outbox relay"), handed to the direct publisher after the
// commit; otherwise (the Store alone, the operator commands) the outbox
// insert NOTIFYs the relay. A domain's second event in a group is applied
// after its first (a second round of the same steps). Each event stays
// atomic on its own: when a group fails, its halves are retried in
// savepoints down to single events, so only the failing event's writes are
// rolled back. A change the breaker must count (below) is applied on its
// own, after the changes before it, so the count is exact.
//
// Heartbeats (domains.checked) of a fetched batch are applied together with
// one read and one multi-row UPDATE (Store.ApplyHeartbeats): they move
// last_checked_at forward (older ones are ignored), reset check_failures and
// schedule the next check (lifecycle.NextCheck); a failed heartbeat counts a
// failure and schedules a retry (lifecycle.RetryAfterFailure).
//
// # Holds and the breaker
//
// A decision lifecycle.Decide puts on hold (more than MaxUnverifyPerDomain
// addresses, a protected domain: BuiltinProtectedDomains plus
// Config.ProtectedDomains, or a handle change without a registration-date
// move) is stored in holds with the addresses and the observation, and the
// audit.enforcement.held event the decision lists is emitted: the enforcer
// applies the Decision as given. ApproveHold applies it
// through the same transactional path (addresses re-verified after the held
// observation are left alone); RejectHold leaves the addresses verified. A
// newer applied observation of the domain supersedes its pending holds (if
// it still unverifies, it is held anew).
//
// The global breaker counts, within BreakerWindow, the domains looked at
// (domains.last_checked_at) and those whose applied observation counts
// toward the breaker (domain_observations.turned_lapsed =
// lifecycle.Decision.BreakerCounts: entering an unverifying phase, or
// unverifying addresses for any reason, re-registration included).
// When fewer than BreakerMinDomains were observed within the window, it
// counts the last BreakerMinDomains observed instead (a window by count,
// never before the last resume), so the breaker of a small site can trip.
// When at least BreakerMinDomains were observed and more than BreakerPct
// percent turned non-active, the breaker opens and audit.enforcement.paused
// is emitted once. While it is open, observations are still recorded and
// domains updated, but every unverification is stored as a hold with cause
// "breaker" (no held event each). ResumeBreaker closes it, restarts the
// counting window, emits audit.enforcement.resumed and applies the pending
// breaker holds (each through ApproveHold); nothing paused is lost, and an
// interrupted resume is finished by calling it again.
//
// # Dry run
//
// With DryRun, decisions are computed, logged, counted
// (domainguard_enforcer_dry_run_unverified_total) and recorded as audit_log
// rows with dry_run=true; no email changes, no hold rows are written, the
// breaker is not evaluated and no outbox rows (so no events) are written.
// Domains and observations are still updated, so scheduling continues.
//
// # Outbox relay
//
// Relay claims unsent outbox rows (FOR UPDATE SKIP LOCKED, safe with
// several replicas), publishes them to AUDIT with Nats-Msg-Id = row id,
// waits for the acks and marks them sent in the same transaction. While a
// full round's acks are on their way, the next round is claimed and
// published (at most two rounds in flight, published and acknowledged in
// order), claiming after the last row of the round before rather than from
// the oldest unsent row (so a large backlog does not rescan the entries of
// rows already sent); it starts from the oldest row again after a round
// that was not full and at least every RelayInterval, which picks up any
// row left behind. It wakes
// on LISTEN domainguard_outbox and polls every RelayInterval.
//
// The events of the enforcing path do not wait for a relay round: an
// enforcing statement writes them already marked sent, together with one
// unsent outbox batch row (subject domainguard.outbox.batch, payload the
// JSON list of their ids), and after the commit the enforcer's direct
// publisher publishes them from memory (Nats-Msg-Id = event id), waits for
// the acks and marks the batch row sent — one small row per batch instead
// of reading every event back and updating it. Exactly-once rests on the
// batch row: as long as it is unsent (the enforcer crashed, the publish
// failed), the relay, after directGrace (10 × RelayInterval, so that it
// does not race the direct publisher), publishes the listed rows in their
// order, and JetStream drops the ids it already has. The direct publisher
// claims a batch row with FOR UPDATE SKIP LOCKED, so a batch is never
// published by both at once. prune_outbox keeps every row at least as new
// as the oldest unsent batch row (migration 0016).
//
// # Metrics
//
//	domainguard_enforcer_events_total{result=applied|stale|duplicate|invalid|unknown}
//	domainguard_enforcer_emails_unverified_total{reason}
//	domainguard_enforcer_dry_run_unverified_total{reason}
//	domainguard_enforcer_holds_open
//	domainguard_enforcer_breaker_open
//	domainguard_enforcer_outbox_lag_seconds
//	domainguard_enforcer_outbox_published_total
//	domainguard_enforcer_heartbeats_total{result=checked|failed|stale|invalid}
package enforcer
