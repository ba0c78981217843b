// Package dnsevidence asks the DNS about a registrable domain (DESIGN.md §2
// "DNS evidence"), for TLDs without RDAP and to corroborate RDAP:
//   - the parent zone's authoritative servers, directly and without
//     recursion (RD=0), for the name's delegation: a referral with NS
//     records means delegated (the NS set is kept), an authoritative
//     NXDOMAIN means not delegated, anything else (SERVFAIL, REFUSED, a
//     timeout, a lame or malformed answer) is no answer — an error, never
//     a phase;
//   - the recursive resolver for the domain's MX and SOA (best effort: a
//     resolver that is down leaves them out).
//
// The parent zone's servers are the configured ones for the TLD
// (Config.TLDServers, DOMAINGUARD_DNS_TLD_SERVERS, "*" for every TLD), or
// else the TLD's published NS, asked of the resolver together with their
// addresses and cached for an hour. A referral to a zone cut below the TLD
// (ac.uk for uni.ac.uk) is followed, at most a few steps.
//
// Nameserver addresses learned from answers (glue, the resolver's A
// records for NS hosts) are chosen by whoever holds the zone, so one that
// is loopback, private, link-local or otherwise non-public
// (dialguard.Classify) is never queried unless Config.AllowPrivateLookups
// (DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS) or the operator named it (the
// resolver and the configured TLD servers are always queried). It is
// skipped, counted (outcome address_refused) and logged, a warning at most
// once a minute. A zone with no other server is a temporary
// *checker.LookupError wrapping checker.ErrLookupRefused: no evidence,
// never "not delegated", which would let the zone's holder make the names
// below it lapse.
//
// Queries go over UDP with EDNS0 and fall back to TCP when the answer is
// truncated; each server is rate limited on its own
// (Config.QueriesPerSecond), every query has a timeout, and a round of
// servers that gave no answer is retried with exponential backoff.
//
// Answers are parsed here from wire format (ParseResponse), so malformed,
// truncated, oversized answers and answers with a mismatched ID or
// question are counted (domainguard_dns_bad_answers_total{reason}) and
// dropped, never trusted and never a panic.
//
// Client.Lookup is a checker.Provider named "dns": it classifies with
// lifecycle.ClassifyDNS. Client.Evidence gives the DNS evidence alone, for
// the auto provider to combine with RDAP (lifecycle.CombineRDAPAndDNS).
//
// Metrics (registered on Config.Registerer):
//
//	domainguard_dns_queries_total{target,outcome}  counter; target: parent, resolver; outcome: ok, nxdomain, servfail, refused, lame, other_rcode, timeout, network_error, bad_answer, address_refused (not sent)
//	domainguard_dns_bad_answers_total{reason}      counter; reason: malformed, truncated, oversized, mismatched_id, wrong_question, not_a_response
package dnsevidence
