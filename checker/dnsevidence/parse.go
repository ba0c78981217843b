package dnsevidence

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Size limits of answers.
const (
	// udpBufferSize is the EDNS0 UDP payload size we advertise; a UDP
	// answer larger than this is oversized.
	udpBufferSize = 1232
	// maxAnswerBytes caps any answer (the TCP length prefix's maximum).
	maxAnswerBytes = dns.MaxMsgSize
)

// Reasons an answer is bad (label values of domainguard_dns_bad_answers_total).
const (
	BadMalformed     = "malformed"
	BadTruncated     = "truncated"
	BadOversized     = "oversized"
	BadMismatchedID  = "mismatched_id"
	BadWrongQuestion = "wrong_question"
	BadNotAResponse  = "not_a_response"
)

// BadAnswerError is an answer that cannot be trusted at all.
type BadAnswerError struct {
	Reason string // one of the Bad* constants
	Err    error
}

func (e *BadAnswerError) Error() string { return "bad DNS answer (" + e.Reason + "): " + e.Err.Error() }
func (e *BadAnswerError) Unwrap() error { return e.Err }

func badAnswer(reason, format string, args ...any) error {
	return &BadAnswerError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ParseResponse unpacks wire as the answer to query. limit is the largest
// acceptable size (udpBufferSize over UDP). It refuses an answer that is
// oversized, does not unpack, is not a response, has another ID or
// another question; a truncated answer (TC) is returned with a
// BadTruncated error so the caller can retry over TCP. It never panics.
func ParseResponse(wire []byte, query *dns.Msg, limit int) (msg *dns.Msg, err error) {
	if len(wire) > limit {
		return nil, badAnswer(BadOversized, "%d bytes, more than %d", len(wire), limit)
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, badAnswer(BadMalformed, "unpack panicked: %v", r)
		}
	}()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		if len(wire) >= 2 && query != nil && uint16(wire[0])<<8|uint16(wire[1]) != query.Id {
			return nil, badAnswer(BadMismatchedID, "unpack: %v", err)
		}
		return nil, badAnswer(BadMalformed, "unpack: %v", err)
	}
	if query != nil && m.Id != query.Id {
		return nil, badAnswer(BadMismatchedID, "id %d, asked %d", m.Id, query.Id)
	}
	if !m.Response || m.Opcode != dns.OpcodeQuery {
		return nil, badAnswer(BadNotAResponse, "QR %v opcode %d", m.Response, m.Opcode)
	}
	if query != nil && len(query.Question) == 1 {
		q := query.Question[0]
		if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, q.Name) ||
			m.Question[0].Qtype != q.Qtype || m.Question[0].Qclass != q.Qclass {
			return nil, badAnswer(BadWrongQuestion, "question %v, asked %s", m.Question, q.String())
		}
	}
	if m.Truncated {
		return m, badAnswer(BadTruncated, "TC set")
	}
	return m, nil
}

// NoAnswerError is a well-formed answer that decides nothing: SERVFAIL,
// REFUSED, a lame or upward referral, no data.
type NoAnswerError struct {
	Outcome string // label value: servfail, refused, other_rcode, lame
	Detail  string
}

func (e *NoAnswerError) Error() string { return "no DNS answer: " + e.Detail }

// Outcomes of one query (label values of domainguard_dns_queries_total).
const (
	OutcomeOK           = "ok"
	OutcomeNXDomain     = "nxdomain"
	OutcomeServfail     = "servfail"
	OutcomeRefused      = "refused"
	OutcomeOtherRcode   = "other_rcode"
	OutcomeLame         = "lame"
	OutcomeTimeout      = "timeout"
	OutcomeNetworkError = "network_error"
	OutcomeBadAnswer    = "bad_answer"
	// OutcomeAddressRefused: not sent, the server's address (learned from
	// an answer) is non-public (Config.AllowPrivateLookups).
	OutcomeAddressRefused = "address_refused"
)

// ParentAnswer is what a parent zone server said about a name.
type ParentAnswer struct {
	// Delegated: a referral (or authoritative NS answer) for the name.
	Delegated bool
	// NotDelegated: an authoritative NXDOMAIN.
	NotDelegated bool
	// Hosted: an authoritative NOERROR without a delegation for the name:
	// the name exists in the asked zone itself, with no zone cut of its
	// own (foo.github.io in github.io). Evidence only for names under a
	// private suffix (lifecycle.HostedCounts); the client treats it as a
	// lame answer for others.
	Hosted bool
	// Rcode is the answer's response code as text.
	Rcode string
	// Nameservers is the NS set of the delegation, or of ReferralZone.
	Nameservers []string
	// ReferralZone is set when the answer refers to a zone cut between
	// the asked zone and the name (ac.uk for uni.ac.uk): ask its servers.
	ReferralZone string
	// Glue maps a nameserver host to the addresses in the additional
	// section.
	Glue map[string][]string
}

// InterpretParent reads the answer of a server of zone (FQDN) to the
// non-recursive question "NS domain" (FQDN). Errors are *NoAnswerError.
func InterpretParent(m *dns.Msg, domain, zone string) (ParentAnswer, error) {
	a := ParentAnswer{Rcode: dns.RcodeToString[m.Rcode]}
	if a.Rcode == "" {
		a.Rcode = fmt.Sprintf("RCODE%d", m.Rcode)
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		if !m.Authoritative {
			return a, &NoAnswerError{Outcome: OutcomeLame, Detail: "NXDOMAIN without the authoritative flag"}
		}
		a.NotDelegated = true
		return a, nil
	case dns.RcodeServerFailure:
		return a, &NoAnswerError{Outcome: OutcomeServfail, Detail: "SERVFAIL"}
	case dns.RcodeRefused:
		return a, &NoAnswerError{Outcome: OutcomeRefused, Detail: "REFUSED"}
	default:
		return a, &NoAnswerError{Outcome: OutcomeOtherRcode, Detail: a.Rcode}
	}
	// NS records for the name itself, in the answer (the server is
	// authoritative for the child too) or the authority section (referral).
	if ns := nsFor(m.Answer, domain); len(ns) > 0 {
		a.Delegated, a.Nameservers = true, ns
		a.Glue = glue(m.Extra)
		return a, nil
	}
	if ns := nsFor(m.Ns, domain); len(ns) > 0 {
		a.Delegated, a.Nameservers = true, ns
		a.Glue = glue(m.Extra)
		return a, nil
	}
	// A referral to a zone cut strictly between zone and domain.
	for _, rr := range m.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := dns.CanonicalName(ns.Hdr.Name)
		if owner != dns.CanonicalName(zone) && dns.IsSubDomain(zone, owner) && dns.IsSubDomain(owner, domain) && owner != dns.CanonicalName(domain) {
			a.ReferralZone = owner
			a.Nameservers = nsFor(m.Ns, owner)
			a.Glue = glue(m.Extra)
			return a, nil
		}
	}
	if m.Authoritative {
		a.Hosted = true
		return a, nil
	}
	return a, &NoAnswerError{Outcome: OutcomeLame, Detail: "neither a referral for the name nor NXDOMAIN (lame server or no data)"}
}

// errHostedNotEvidence is the answer "the name exists in the zone without a
// cut" for a name where that is no evidence (lifecycle.HostedCounts).
var errHostedNotEvidence = &NoAnswerError{Outcome: OutcomeLame,
	Detail: "authoritative answer without a delegation for a registrable domain (a registry zone holds delegations)"}

// nsFor returns the sorted, de-duplicated NS targets of owner in rrs.
func nsFor(rrs []dns.RR, owner string) []string {
	var out []string
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(ns.Hdr.Name, owner) {
			out = append(out, hostName(ns.Ns))
		}
	}
	return sortedSet(out)
}

func glue(rrs []dns.RR) map[string][]string {
	g := make(map[string][]string)
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			g[hostName(v.Hdr.Name)] = append(g[hostName(v.Hdr.Name)], v.A.String())
		case *dns.AAAA:
			g[hostName(v.Hdr.Name)] = append(g[hostName(v.Hdr.Name)], v.AAAA.String())
		}
	}
	return g
}

// hostName is a host name lower case without the trailing dot.
func hostName(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }

func sortedSet(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	slices.Sort(ss)
	return slices.Compact(ss)
}

// InterpretResolver reads a recursive resolver's answer about domain
// (FQDN). known is false when the resolver gave no usable answer
// (SERVFAIL and the like); NXDOMAIN and NOERROR are known.
func InterpretResolver(m *dns.Msg) (known bool, err error) {
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return true, nil
	case dns.RcodeServerFailure:
		return false, &NoAnswerError{Outcome: OutcomeServfail, Detail: "resolver SERVFAIL"}
	case dns.RcodeRefused:
		return false, &NoAnswerError{Outcome: OutcomeRefused, Detail: "resolver REFUSED"}
	}
	return false, &NoAnswerError{Outcome: OutcomeOtherRcode, Detail: "resolver " + dns.RcodeToString[m.Rcode]}
}

// MXHosts returns the sorted MX targets in the answer section ("." — a
// null MX, RFC 7505 — is left out).
func MXHosts(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." && mx.Mx != "" {
			out = append(out, hostName(mx.Mx))
		}
	}
	return sortedSet(out)
}

// SOAOf returns the serial and primary server of the SOA of domain in the
// answer section.
func SOAOf(m *dns.Msg, domain string) (serial uint32, mname string, ok bool) {
	for _, rr := range m.Answer {
		if soa, isSOA := rr.(*dns.SOA); isSOA && strings.EqualFold(soa.Hdr.Name, domain) {
			return soa.Serial, hostName(soa.Ns), true
		}
	}
	return 0, "", false
}

// isBad reports whether err is a bad answer and its reason.
func isBad(err error) (string, bool) {
	var b *BadAnswerError
	if errors.As(err, &b) {
		return b.Reason, true
	}
	return "", false
}
