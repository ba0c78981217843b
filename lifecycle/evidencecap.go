package lifecycle

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Evidence size limits. Evidence comes from registries and resolvers, so
// its size is theirs to choose: the checker caps it before publishing, so
// that an event carrying two evidences (a change: previous and new) always
// fits the size every consumer accepts (schemas.MaxMessageBytes, 64 KiB;
// the schemas tests check the worst case against it).
const (
	// MaxEvidenceBytes bounds one evidence's JSON encoding.
	MaxEvidenceBytes = 16 << 10
	// MaxEvidenceItems bounds each list (statuses, nameservers, MX, ...).
	MaxEvidenceItems = 32
	// MaxEvidenceText bounds each string of a list (a DNS name is at most
	// 253 bytes) and the other short fields.
	MaxEvidenceText = 253
	// MaxEvidenceDetail bounds Detail.
	MaxEvidenceDetail = 1024
)

// Capped returns e within the evidence size limits: every list keeps its
// first MaxEvidenceItems entries (lists are sorted, so the kept ones are
// the same on every lookup), every string at most MaxEvidenceText bytes,
// and while the encoding still exceeds MaxEvidenceBytes the longest list
// is halved. What was dropped is counted at the start of Detail ("evidence
// capped: nameservers 5000 -> 32"), so the evidence says it is incomplete.
func (e Evidence) Capped() Evidence {
	var notes []string
	e.Detail = truncateUTF8(e.Detail, MaxEvidenceDetail)
	e.Provider, e.Server, e.Handle, e.RegistrarIANAID = capText(e.Provider), capText(e.Server), capText(e.Handle), capText(e.RegistrarIANAID)
	lists := []struct {
		name string
		l    *[]string
	}{{"statuses", &e.Statuses}, {"nameservers", &e.Nameservers}}
	if e.Baseline != nil {
		b := *e.Baseline
		e.Baseline = &b
		b.RegistrarIANAID = capText(b.RegistrarIANAID)
		lists = append(lists, struct {
			name string
			l    *[]string
		}{"baseline nameservers", &e.Baseline.Nameservers})
	}
	if e.DNS != nil {
		d := *e.DNS
		e.DNS = &d
		d.Rcode, d.ParentServer, d.SOAMname = capText(d.Rcode), capText(d.ParentServer), capText(d.SOAMname)
		for _, l := range []struct {
			name string
			l    *[]string
		}{{"dns nameservers", &e.DNS.Nameservers}, {"mx", &e.DNS.MX}, {"dns baseline nameservers", &e.DNS.BaselineNameservers},
			{"baseline mx", &e.DNS.BaselineMX}} {
			lists = append(lists, l)
		}
	}
	total := make([]int, len(lists))
	for i, l := range lists {
		total[i] = len(*l.l)
		kept := (*l.l)[:min(len(*l.l), MaxEvidenceItems)]
		out := make([]string, len(kept))
		for j, s := range kept {
			out[j] = capText(s)
		}
		if *l.l != nil {
			*l.l = out
		}
	}
	for size(e) > MaxEvidenceBytes {
		longest := 0
		for i, l := range lists {
			if len(*l.l) > len(*lists[longest].l) {
				longest = i
			}
		}
		l := lists[longest].l
		if len(*l) == 0 {
			break // the short fields alone are within the limit
		}
		*l = (*l)[:len(*l)/2]
	}
	for i, l := range lists {
		if n := len(*l.l); n < total[i] {
			notes = append(notes, fmt.Sprintf("%s %d -> %d", l.name, total[i], n))
		}
	}
	if len(notes) > 0 {
		// The note first, so truncating a long detail keeps it.
		note := "evidence capped: " + strings.Join(notes, ", ")
		if e.Detail != "" {
			note += "; " + e.Detail
		}
		e.Detail = note
	}
	e.Detail = truncateUTF8(e.Detail, MaxEvidenceDetail)
	return e
}

func size(e Evidence) int {
	b, err := json.Marshal(e)
	if err != nil {
		return 0
	}
	return len(b)
}

func capText(s string) string { return truncateUTF8(s, MaxEvidenceText) }

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
