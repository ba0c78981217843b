// Package rdap looks up the registration status of a domain with RDAP
// (RFC 9082/9083), finding the authoritative server through the IANA
// bootstrap registry (RFC 9224).
//
// The package does the I/O and turns an RDAP answer into
// lifecycle.Evidence; the phase is decided by lifecycle.ClassifyRDAPAfter
// (with the registry's lifecycle.Profile), and the grace-sale baseline
// (lifecycle.GraceBaseline) is kept with the evidence.
//
// Safety rules kept here (DESIGN.md §2):
//   - A 404 becomes released (Evidence.NotFound) only when it comes from the
//     bootstrap-authoritative server (or a configured override) and a canary
//     under the same public suffix — Config.Canaries
//     (DOMAINGUARD_RDAP_CANARIES), else the registry profile's
//     (lifecycle.Profile.CanaryFor, which vouches only for suffixes the
//     registry holds) — answers on that same server, asked again right after
//     every 404. Otherwise the observation is unknown.
//   - Failures (network, timeouts, 5xx, 429) are returned as
//     *checker.LookupError, never as a phase.
//   - Bootstrap services reachable only over plain http are ignored: an
//     unauthenticated answer could forge a 404 and its canary alike. Use
//     Config.Overrides to configure such a TLD deliberately.
//   - The default HTTP client never connects to a loopback, private or
//     link-local address (internal/dialguard, checked on the address
//     dialed) that only the bootstrap or a redirect names, unless
//     Config.AllowPrivateLookups: whoever controls the bootstrap must not
//     aim lookups at internal services. The bootstrap URL and the
//     overrides are the operator's and always allowed. A refusal is a
//     *checker.LookupError wrapping checker.ErrLookupRefused.
package rdap
