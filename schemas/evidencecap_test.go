package schemas

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// The checker caps evidence (lifecycle.Evidence.Capped) so that a change
// carrying two evidences of the worst size still fits MaxMessageBytes, the
// limit every consumer enforces: one limit, checked here.
func TestWorstCaseChangeFitsTheMessageLimit(t *testing.T) {
	var ns []string
	for i := range 5000 {
		ns = append(ns, fmt.Sprintf("ns%05d.%s.example", i, strings.Repeat("x", 230)))
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	huge := lifecycle.Evidence{Provider: "rdap", Server: "https://rdap.example/", Statuses: ns, Nameservers: ns,
		Handle: strings.Repeat("h", 5000), Detail: strings.Repeat("d", 5000), ObservedAt: at, Baseline: &lifecycle.Baseline{Nameservers: ns},
		DNS: &lifecycle.DNSEvidence{Delegated: true, Rcode: "NOERROR", Nameservers: ns, MX: ns, BaselineNameservers: ns, BaselineMX: ns}}
	prev, next := huge.Capped(), huge.Capped()
	ev, err := NewEvent(strings.Repeat("s", 200), "domains.changed", "example.com", at, DomainChanged{Domain: "example.com",
		PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseExpired, PreviousEvidence: &prev, Evidence: next})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > MaxMessageBytes {
		t.Fatalf("worst-case change event is %d bytes, limit %d", len(body), MaxMessageBytes)
	}
	if _, _, err := Decode[DomainChanged](body); err != nil {
		t.Fatalf("worst-case change event is refused: %v", err)
	}
}
