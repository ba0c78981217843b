// Package producer feeds domainguard with work (DESIGN.md §6–§8):
//
//   - the intake consumer reads the host's accounts.email.verified and
//     accounts.email.removed events (CloudEvents or bare JSON) from ACCOUNTS,
//     keeps the emails and domains tables in step, and enqueues an immediate
//     check (reason signup) for a domain it sees for the first time;
//   - Import bulk-loads an existing user base from CSV;
//   - the sweep enqueues every due domain on domains.check.<domain>, in
//     urgency order, within the daily lookup budget, and leases it
//     (next_check_at = now + CheckLease) until the enforcer records the
//     result and schedules the next check.
//
// # Addresses
//
// An address is stored under one key for every form of it the host may
// send (domainname.StoredEmail): its local part exactly as the host sent it
// and its domain part normalised to the IDNA A-label in lower case without
// a trailing dot ("Alice@Bücher.DE." → "Alice@xn--bcher-kva.de"): local
// parts are case-sensitive in principle (RFC 5321), while the domain's form
// never matters. Removal events and host API lookups are keyed the same
// way, so a removal or a lookup in another form than the registration finds
// the address; emails.email_as_sent keeps the form the host last sent. Rows
// stored under the older key (domain part only lower-cased) are rekeyed at
// the sweeper's start (RekeyAddresses). The emails.domain column holds the
// registrable domain (internal/domainname), the unit of every lookup.
//
// An address the host reports as verified again (a newer verified_at) is
// verified again, also after domainguard unverified it: that is the host
// re-verifying the owner, which domainguard never does by itself. An event
// whose verified_at is not newer than the stored one, or not newer than the
// time domainguard unverified the address, changes nothing (stale-event
// guard for late or replayed host events).
//
// # Scheduling ownership
//
// The producer sets next_check_at = now for a first-seen domain (intake and
// import) and, when the sweep enqueues a domain, leases it: next_check_at =
// now + CheckLease (+ up to 10% jitter), last_enqueued_at = now. The enforcer
// sets the real next time from the result (lifecycle.NextCheck). A check lost
// anywhere is therefore re-enqueued when the lease runs out, and a producer
// that dies mid-sweep loses nothing: the domains it had not yet leased are
// still due.
//
// # The sweep's steps
//
// Producer.Sweep counts the due domains, takes the sweep lock, reads the
// budget left and runs a sweepRun: a page reader (readPages, one page
// ahead), the publishing loop (publishPages, publishPage), a collector
// awaiting the acks in order (collect) and a lease writer (writeLeases),
// then records the result (finish). RunSweeper runs Sweep every
// SweepInterval.
//
// # Urgency
//
// When the due work exceeds the daily budget, the sweep enqueues in one
// pass per class of lifecycle.UrgencyRule, which it translates into SQL
// (urgency.go): today never checked (last_checked_at IS NULL); then
// expiring or not active (phase <> 'active', or expires_at within 30 days);
// then the rest. Within a pass the most overdue (smallest next_check_at) go
// first. Every pass is keyset-paginated on (next_check_at, name); nothing
// is loaded into memory beyond one page. A property test checks that the
// SQL reads random domains rows in lifecycle's order.
//
// # Metrics
//
// All registered on Config.Registerer:
//
//	domainguard_producer_intake_accepted_total        intake messages applied
//	domainguard_producer_intake_duplicates_total      redeliveries of an already applied message
//	domainguard_producer_intake_ignored_total         messages on other accounts.* subjects (acked)
//	domainguard_producer_intake_dead_lettered_total   malformed messages sent to dlq.ACCOUNTS
//	domainguard_producer_intake_errors_total          transient failures (message nak'd for redelivery)
//	domainguard_producer_signup_checks_total          signup checks enqueued for first-seen domains
//	domainguard_producer_domains_due                  due domains at the start of the last sweep
//	domainguard_producer_domains_overdue              domains whose next_check_at is more than 24h past
//	domainguard_producer_enqueued_total               checks enqueued by sweeps
//	domainguard_producer_already_pending_total        sweep publishes refused because a check was pending (counted as done)
//	domainguard_producer_publish_failures_total       sweep publishes that failed (the domain stays due)
//	domainguard_producer_budget_left                  lookups left in the rolling day (-1: unlimited)
//	domainguard_producer_sweep_duration_seconds       histogram of sweep durations
//	domainguard_producer_sweeps_total                 sweeps run by this process
//	domainguard_producer_sweeps_skipped_total         sweeps skipped because another replica held the sweep lock
//	domainguard_producer_last_sweep_timestamp_seconds end of this process's last completed sweep
package producer
