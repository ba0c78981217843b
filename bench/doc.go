// Package bench measures domainguard's pipeline against baselines taken in
// the same run on the same machine (issue 9): every figure is a ratio, so
// it stays meaningful on a busy laptop or a fast server.
//
// Phases (Options.Only selects them):
//   - sweep: producer.Sweep enqueueing Domains never-checked domains, vs a
//     bare JetStream async publish loop of check messages of the same size
//     into an identical DOMAIN_CHECKS stream (the broker's limit);
//   - enforcer: enforcer.Enforcer unverifying Emails addresses from
//     pre-published domains.changed events until every
//     audit.email.unverified event arrived on AUDIT, vs a bare batched
//     UPDATE of the same rows (the database's limit);
//   - checker: checker.Worker on a fake provider answering in 50 ms, vs the
//     configured rate limit (CheckRate);
//   - e2e: checker and enforcer together, fed CheckRate-free check requests
//     at E2ERate for E2EDuration; p50/p99 from the fake provider's answer
//     that changes a domain to the arrival of its audit.email.unverified
//     events.
//
// Roles run in this process through their public APIs, each phase against
// its own stream namespace and the one fresh database Run creates
// (dg_bench_<random>, dropped at the end). Peak memory is the highest Go
// heap (runtime/metrics /memory/classes/heap/objects:bytes, sampled every
// 20 ms after a GC at the phase start) seen during a phase, attributed to
// the role(s) that phase runs; with an embedded NATS server the server's
// heap is included too (Report.Env says which).
package bench
