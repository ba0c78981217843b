// Package fakedns is a scriptable loopback DNS server for tests, built on
// github.com/miekg/dns' server. One Server plays two roles, told apart by
// the query's RD flag:
//   - the parent zone (RD=0): for "NS name" it answers a referral with the
//     name's NS set (delegated), an authoritative NXDOMAIN (not
//     delegated), or a scripted fault;
//   - the recursive resolver (RD=1): MX and SOA of delegated names,
//     NXDOMAIN for the others.
//
// Names are delegated by default (to ns1.<name> and ns2.<name>, with MX
// mx.<name>), like fakerdap's default active answer; Undelegate, Delegate,
// Host (a name held in the parent zone itself, without a zone cut, as
// foo.github.io is) and SetMX script them. Faults (SERVFAIL, REFUSED, no answer at all,
// malformed, truncated, oversized, mismatched-ID and lame answers) can be
// set per name or for every name ("*"). Cut scripts a zone cut below the
// parent zone (ac.uk under uk), referred to with glue. UDP and TCP listen
// on the same loopback port. Never reaches the internet. Safe for concurrent use.
package fakedns

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Fault is a scripted misbehaviour.
type Fault string

// The faults.
const (
	FaultNone     Fault = ""
	FaultServfail Fault = "servfail"
	FaultRefused  Fault = "refused"
	// FaultTimeout: no answer at all.
	FaultTimeout Fault = "timeout"
	// FaultMalformed: bytes that do not unpack as a DNS message.
	FaultMalformed Fault = "malformed"
	// FaultTruncated: UDP answers have TC set and no records; TCP answers
	// are complete (exercises the TCP fallback).
	FaultTruncated Fault = "truncated"
	// FaultTruncatedTCP: truncated over UDP and cut short over TCP.
	FaultTruncatedTCP Fault = "truncated_tcp"
	// FaultOversized: a UDP answer larger than any EDNS0 buffer we offer.
	FaultOversized Fault = "oversized"
	// FaultMismatchedID: the answer carries another ID.
	FaultMismatchedID Fault = "mismatched_id"
	// FaultLame: NOERROR without a referral or an answer.
	FaultLame Fault = "lame"
)

// Wildcard applies a fault to every name.
const Wildcard = "*"

type entry struct {
	delegated bool
	hosted    bool // present without a cut: authoritative NOERROR, no referral
	ns        []string
	mx        []string
}

// Server is a running fake. Create it with Start.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu      sync.Mutex
	names   map[string]*entry
	parent  map[string]Fault // faults of the parent zone role
	resolve map[string]Fault // faults of the resolver role
	queries map[string]int   // per lower-case name without dot
	cuts    map[string]map[string][]string
}

// Start starts a Server on a free loopback port and stops it when the test
// ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Listen()
	if err != nil {
		tb.Fatalf("fakedns: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Listen starts a Server on a free loopback port (UDP and TCP); Close
// stops it.
func Listen() (*Server, error) {
	s := &Server{names: make(map[string]*entry), parent: make(map[string]Fault),
		resolve: make(map[string]Fault), queries: make(map[string]int),
		cuts: make(map[string]map[string][]string)}
	var lastErr error
	for try := 0; try < 20; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			lastErr = err
			continue
		}
		s.addr = pc.LocalAddr().String()
		s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
		s.tcp = &dns.Server{Listener: l, Handler: dns.HandlerFunc(s.serve)}
		started := make(chan struct{}, 2)
		s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
		s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { _ = s.udp.ActivateAndServe() }()
		go func() { _ = s.tcp.ActivateAndServe() }()
		for range 2 {
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				s.Close()
				return nil, fmt.Errorf("server did not start")
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("no free UDP+TCP port pair: %w", lastErr)
}

// Addr returns host:port (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() {
	if s.udp != nil {
		_ = s.udp.Shutdown()
	}
	if s.tcp != nil {
		_ = s.tcp.Shutdown()
	}
}

func key(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// Delegate makes the parent zone refer name to ns (default ns1.<name>,
// ns2.<name>).
func (s *Server) Delegate(name string, ns ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(key(name))
	e.delegated, e.hosted = true, false
	if len(ns) > 0 {
		e.ns = append([]string(nil), ns...)
	}
}

// Host makes the parent zone hold name itself, with no zone cut: asked for
// its NS, a parent server answers with authority NOERROR and no records
// (no data), as github.io's servers do for a GitHub Pages name. The
// resolver answers as for a delegated name.
func (s *Server) Host(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(key(name))
	e.delegated, e.hosted = true, true
}

// Undelegate makes the parent zone answer NXDOMAIN for name (and the
// resolver too).
func (s *Server) Undelegate(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entryLocked(key(name)).delegated = false
}

// Cut makes the parent zone role answer every name strictly below zone
// with a referral to zone: NS records for each host of ns and, in the
// additional section, A or AAAA glue for the addresses listed with it (a
// host without addresses gets none). As a TLD server refers uni.ac.uk to
// the servers of ac.uk.
func (s *Server) Cut(zone string, ns map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := make(map[string][]string, len(ns))
	for h, addrs := range ns {
		c[key(h)] = append([]string(nil), addrs...)
	}
	s.cuts[key(zone)] = c
}

// SetMX sets the MX hosts the resolver gives for name (none: no MX).
func (s *Server) SetMX(name string, hosts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entryLocked(key(name)).mx = append([]string{}, hosts...)
}

// SetParentFault scripts the parent zone role's answer for name ("*":
// every name); FaultNone clears it.
func (s *Server) SetParentFault(name string, f Fault) { s.setFault(s.parent, name, f) }

// SetResolverFault scripts the resolver role's answers for name ("*":
// every name); FaultNone clears it.
func (s *Server) SetResolverFault(name string, f Fault) { s.setFault(s.resolve, name, f) }

func (s *Server) setFault(m map[string]Fault, name string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == FaultNone {
		delete(m, key(name))
		return
	}
	m[key(name)] = f
}

// Queries returns how many queries about name (any role) arrived.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[key(name)]
}

func (s *Server) entryLocked(k string) *entry {
	e, ok := s.names[k]
	if !ok {
		e = &entry{delegated: true}
		s.names[k] = e
	}
	if e.ns == nil {
		e.ns = []string{"ns1." + k, "ns2." + k}
	}
	if e.mx == nil {
		e.mx = []string{"mx." + k}
	}
	return e
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	k := key(q.Name)
	s.mu.Lock()
	s.queries[k]++
	faults := s.resolve
	if !req.RecursionDesired {
		faults = s.parent
	}
	fault, ok := faults[k]
	if !ok {
		fault = faults[Wildcard]
	}
	e := *s.entryLocked(k)
	cut, cutNS := s.cutLocked(k)
	s.mu.Unlock()

	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	m := new(dns.Msg)
	m.SetReply(req)
	switch fault {
	case FaultTimeout:
		return
	case FaultServfail:
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	case FaultRefused:
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	case FaultMalformed:
		raw := []byte{byte(req.Id >> 8), byte(req.Id), 0x84, 0x00, 0x00, 0x01, 0x00, 0x05, 0xff, 0xff}
		_, _ = w.Write(raw)
		return
	case FaultLame:
		_ = w.WriteMsg(m)
		return
	case FaultTruncated, FaultTruncatedTCP:
		if !tcp {
			m.Truncated = true
			_ = w.WriteMsg(m)
			return
		}
		if fault == FaultTruncatedTCP {
			full := s.answer(req, m, e)
			wire, _ := full.Pack()
			_, _ = w.Write(wire[:len(wire)/2])
			return
		}
	case FaultMismatchedID:
		full := s.answer(req, m, e)
		full.Id = req.Id + 1
		_ = w.WriteMsg(full)
		return
	case FaultOversized:
		full := s.answer(req, m, e)
		for i := range 200 {
			full.Extra = append(full.Extra, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{fmt.Sprintf("padding %03d %s", i, strings.Repeat("x", 40))}})
		}
		wire, _ := full.Pack()
		_, _ = w.Write(wire)
		return
	}
	if cut != "" && !req.RecursionDesired {
		_ = w.WriteMsg(referral(m, cut, cutNS))
		return
	}
	_ = w.WriteMsg(s.answer(req, m, e))
}

// cutLocked returns the deepest scripted cut strictly above name k.
func (s *Server) cutLocked(k string) (zone string, ns map[string][]string) {
	for z, n := range s.cuts {
		if strings.HasSuffix(k, "."+z) && len(z) > len(zone) {
			zone, ns = z, n
		}
	}
	return zone, ns
}

// referral fills m with a referral to zone's servers ns, with their glue.
func referral(m *dns.Msg, zone string, ns map[string][]string) *dns.Msg {
	hosts := make([]string, 0, len(ns))
	for h := range ns {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	for _, h := range hosts {
		m.Ns = append(m.Ns, &dns.NS{Hdr: hdr(zone, dns.TypeNS), Ns: dns.Fqdn(h)})
		for _, a := range ns[h] {
			switch ip := net.ParseIP(a); {
			case ip == nil:
			case ip.To4() != nil:
				m.Extra = append(m.Extra, &dns.A{Hdr: hdr(h, dns.TypeA), A: ip.To4()})
			default:
				m.Extra = append(m.Extra, &dns.AAAA{Hdr: hdr(h, dns.TypeAAAA), AAAA: ip})
			}
		}
	}
	return m
}

// answer fills m (a reply to req) from the scripted state of the name.
func (s *Server) answer(req, m *dns.Msg, e entry) *dns.Msg {
	q := req.Question[0]
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	if !e.delegated {
		m.Rcode = dns.RcodeNameError
		m.Authoritative = !req.RecursionDesired
		m.Ns = append(m.Ns, &dns.SOA{Hdr: hdr(parentOf(q.Name), dns.TypeSOA), Ns: "a.nic." + parentOf(q.Name), Mbox: "hostmaster.nic." + parentOf(q.Name),
			Serial: 2026010101, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300})
		return m
	}
	if !req.RecursionDesired && e.hosted {
		// The parent zone holds the name: authoritative, no data.
		m.Authoritative = true
		m.Ns = append(m.Ns, &dns.SOA{Hdr: hdr(parentOf(q.Name), dns.TypeSOA), Ns: "a.nic." + parentOf(q.Name), Mbox: "hostmaster.nic." + parentOf(q.Name),
			Serial: 2026010101, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300})
		return m
	}
	if !req.RecursionDesired {
		// The parent zone: a referral (not authoritative for the child).
		for _, ns := range e.ns {
			m.Ns = append(m.Ns, &dns.NS{Hdr: hdr(q.Name, dns.TypeNS), Ns: dns.Fqdn(ns)})
		}
		return m
	}
	m.RecursionAvailable = true
	switch q.Qtype {
	case dns.TypeMX:
		for i, mx := range e.mx {
			m.Answer = append(m.Answer, &dns.MX{Hdr: hdr(q.Name, dns.TypeMX), Preference: uint16(10 * (i + 1)), Mx: dns.Fqdn(mx)})
		}
	case dns.TypeSOA:
		m.Answer = append(m.Answer, &dns.SOA{Hdr: hdr(q.Name, dns.TypeSOA), Ns: dns.Fqdn(e.ns[0]), Mbox: "hostmaster." + dns.Fqdn(q.Name),
			Serial: 2026120601, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300})
	case dns.TypeNS:
		for _, ns := range e.ns {
			m.Answer = append(m.Answer, &dns.NS{Hdr: hdr(q.Name, dns.TypeNS), Ns: dns.Fqdn(ns)})
		}
	case dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(q.Name, dns.TypeA), A: net.IPv4(127, 0, 0, 1)})
	}
	return m
}

func parentOf(fqdn string) string {
	labels := dns.SplitDomainName(fqdn)
	if len(labels) <= 1 {
		return "."
	}
	return dns.Fqdn(strings.Join(labels[1:], "."))
}
