// Package e2e holds domainguard's end-to-end suite: the real binary's roles
// (producer, checker, enforcer as separate OS processes, or all in one
// `domainguard run` process; built by internal/testbin) against real
// PostgreSQL and NATS JetStream servers and a
// scripted RDAP provider (internal/fakerdap plus a "quirky" HTTPS server for
// broken answers). The package has no non-test code; see README.md for the
// scenarios and how to run the long form (DOMAINGUARD_E2E_LONG=1).
//
// Time is real inside the processes, so "simulated time" in these tests
// means: the provider's scripted answers change between steps, and the
// passage of time the scheduler waits for (next_check_at, the retry delay
// after a failed lookup) is fast-forwarded by SQL
// (UPDATE domains SET next_check_at = now()) together with a short
// DOMAINGUARD_SWEEP_INTERVAL.
package e2e
