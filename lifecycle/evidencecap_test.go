package lifecycle

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// hugeEvidence is evidence as a hostile or broken registry could send it.
func hugeEvidence(n int) Evidence {
	var ns, st []string
	for i := range n {
		ns = append(ns, fmt.Sprintf("ns%05d.%s.example", i, strings.Repeat("x", 200)))
		st = append(st, fmt.Sprintf("status %d", i))
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return Evidence{Provider: "rdap", Server: strings.Repeat("s", 5000), Statuses: st, Nameservers: ns,
		Handle: strings.Repeat("h", 5000), Detail: strings.Repeat("d", 5000), ObservedAt: at,
		Baseline: &Baseline{Nameservers: ns},
		DNS:      &DNSEvidence{Delegated: true, Rcode: "NOERROR", Nameservers: ns, MX: ns, BaselineNameservers: ns, BaselineMX: ns}}
}

func TestEvidenceCapped(t *testing.T) {
	e := hugeEvidence(5000).Capped()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxEvidenceBytes {
		t.Errorf("capped evidence encodes to %d bytes, limit %d", len(b), MaxEvidenceBytes)
	}
	if len(e.Nameservers) == 0 || len(e.Nameservers) > MaxEvidenceItems || e.Nameservers[0] != hugeEvidence(1).Nameservers[0] {
		t.Errorf("nameservers kept %d, first %q: want the first ones, at most %d", len(e.Nameservers), e.Nameservers[:min(1, len(e.Nameservers))], MaxEvidenceItems)
	}
	if !strings.Contains(e.Detail, "evidence capped: ") || !strings.Contains(e.Detail, "nameservers 5000 -> ") || len(e.Detail) > MaxEvidenceDetail {
		t.Errorf("detail %q: want the dropped counts, at most %d bytes", e.Detail, MaxEvidenceDetail)
	}
	if len(e.Handle) > MaxEvidenceText {
		t.Errorf("handle of %d bytes kept", len(e.Handle))
	}
	// Ordinary evidence is unchanged.
	small := Evidence{Provider: "rdap", Statuses: []string{"active"}, Nameservers: []string{"a.ns", "b.ns"}, Detail: "x"}
	if got := small.Capped(); got.Detail != "x" || len(got.Nameservers) != 2 {
		t.Errorf("small evidence changed: %+v", got)
	}
}
