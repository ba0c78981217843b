// Package cluster holds the scale-out proof of domainguard (issue 8): tests
// that start a real 3-node NATS JetStream cluster on loopback from
// deploy/nats/cluster.conf (three nats-server processes with routes, each
// with its own store), create the topology with 3 replicas and run the
// roles as separate processes of the built binary against a fake RDAP
// provider and a fresh PostgreSQL database.
//
//   - TestClusterFailover (short form by default, full form with
//     DOMAINGUARD_CLUSTER_LONG=1) kills the node that leads DOMAIN_CHECKS
//     and brings it back, SIGKILLs role replicas, and checks the end state:
//     every expected unverification exactly once, every audit event exactly
//     once by id, no healthy address touched, consumers drained, one check
//     per domain (the sweep singleton).
//   - TestCheckerScaling (DOMAINGUARD_CLUSTER_SCALING=1) measures checks/s
//     with 1, 2 and 4 checker processes, without and with a per-process
//     rate limit, and prints the table docs/SCALING.md quotes.
//
// The package has no non-test code; this file only documents it.
package cluster
