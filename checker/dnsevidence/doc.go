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
//	domainguard_dns_queries_total{target,outcome}  counter; target: parent, resolver; outcome: ok, nxdomain, servfail, refused, other_rcode, timeout, network_error, bad_answer
//	domainguard_dns_bad_answers_total{reason}      counter; reason: malformed, truncated, oversized, mismatched_id, wrong_question, not_a_response
package dnsevidence
