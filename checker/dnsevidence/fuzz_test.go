package dnsevidence

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

// FuzzParseAnswer feeds arbitrary wire-format answers to the parser and
// the interpretation of parent zone and resolver answers: whatever the
// bytes, it must not panic, a refused answer carries a reason and an
// accepted one says exactly one thing about the name.
func FuzzParseAnswer(f *testing.F) {
	q := newQuery("example.eu.", dns.TypeNS, false)
	q.Id = 0x1234
	for _, m := range seedAnswers(q) {
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
		f.Add(wire[:len(wire)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x34, 0x84, 0x00, 0x00, 0x01, 0x00, 0x05, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, wire []byte) {
		for _, limit := range []int{udpBufferSize, maxAnswerBytes} {
			m, err := ParseResponse(wire, q, limit)
			if err != nil {
				if reason, bad := isBad(err); !bad || reason == "" {
					t.Fatalf("error without a reason: %v", err)
				}
				if reason, _ := isBad(err); reason != BadTruncated {
					continue
				}
			}
			// A decisive answer says exactly one thing: delegated, not
			// delegated, hosted in the zone without a cut, or a referral.
			a, err := InterpretParent(m, "example.eu.", "eu.")
			if err == nil {
				said := 0
				for _, b := range []bool{a.Delegated, a.NotDelegated, a.Hosted, a.ReferralZone != ""} {
					if b {
						said++
					}
				}
				if said != 1 {
					t.Fatalf("decisive answer that says %d things (want exactly one): %+v", said, a)
				}
			}
			_, _ = InterpretResolver(m)
			_ = MXHosts(m)
			_, _, _ = SOAOf(m, "example.eu.")
		}
	})
}

// seedAnswers are typical answers to q: a referral, an NXDOMAIN, an
// authoritative NS answer, a referral below the TLD, SERVFAIL.
func seedAnswers(q *dns.Msg) []*dns.Msg {
	referral := new(dns.Msg)
	referral.SetReply(q)
	referral.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.eu.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns1.host.example."}}
	referral.Extra = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "ns1.host.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
	nx := new(dns.Msg)
	nx.SetRcode(q, dns.RcodeNameError)
	nx.Authoritative = true
	nx.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "eu.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "a.nic.eu.", Mbox: "h.nic.eu.", Serial: 1}}
	auth := new(dns.Msg)
	auth.SetReply(q)
	auth.Authoritative = true
	auth.Answer = referral.Ns
	mx := new(dns.Msg)
	mx.SetReply(q)
	mx.Answer = []dns.RR{&dns.MX{Hdr: dns.RR_Header{Name: "example.eu.", Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 60}, Preference: 10, Mx: "mx.example.eu."}}
	fail := new(dns.Msg)
	fail.SetRcode(q, dns.RcodeServerFailure)
	return []*dns.Msg{referral, nx, auth, mx, fail}
}

// TestFuzzCorpusIsThere keeps the checked-in corpus readable by the fuzz
// target (go test runs testdata/fuzz/FuzzParseAnswer as regression cases).
func TestFuzzCorpusIsThere(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseAnswer", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, f := range files {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
}
