package simulate

import (
	"context"
	"fmt"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// DefaultNoRDAPShare is the share of organisation and custom domains that
// DNSOnly puts on ccTLDs without an RDAP service (docs/simulation.md says
// why).
const DefaultNoRDAPShare = 0.15

// DNSOnlyResult is the efficacy for addresses on ccTLDs without RDAP (and
// without a commercial provider), with and without DNS evidence.
type DNSOnlyResult struct {
	// Share is the share of organisation and custom domains put on such
	// ccTLDs; Domains and Addresses count them.
	Share     float64 `json:"share"`
	Domains   int     `json:"domains"`
	Addresses int     `json:"addresses"`
	// Lapses counts their lapses, by kind.
	Lapses     int `json:"lapses"`
	Drops      int `json:"drops"`
	Auctions   int `json:"auctions"`
	GraceSales int `json:"grace_sales"`
	// Prevented counts lapses all of whose addresses were unverified before
	// the attacker's day with DNS evidence (PreventedDrops of the drops);
	// PreventedPctNoDNS is the same run without DNS evidence (the domains
	// are unmonitored: checked weekly, never decided).
	Prevented         int     `json:"prevented_with_dns"`
	PreventedDrops    int     `json:"prevented_drops_with_dns"`
	PreventedPct      float64 `json:"prevented_pct_with_dns"`
	PreventedPctNoDNS float64 `json:"prevented_pct_without_dns"`
	// DNSLookups counts the DNS-only checks over the run with DNS evidence
	// (they do not use the registry lookup budget).
	DNSLookups int `json:"dns_lookups"`
	// FalseUnverified counts addresses unverified on domains that did not
	// lapse.
	FalseUnverified int `json:"false_unverified"`
}

// dnsOnlyDomain reports whether domain di is put on a ccTLD without RDAP:
// a deterministic draw from its index, for organisation and custom
// domains only (mailbox providers have their own gTLD or RDAP ccTLD).
func (w *World) dnsOnlyDomain(di int32, share float64) bool {
	if w.domains[di].class == ClassProvider {
		return false
	}
	return float64(splitmix(w.cfg.Seed^uint64(di)*0x9e3779b97f4a7c15)%1_000_000)/1_000_000 < share
}

// dnsEvidence is what the DNS shows for domain di on day: the parent zone
// delegates the name to its hosting NS (parking during a lapse that parks,
// the new owner's after a sale, auction or re-registration) and stops
// delegating it from its deletion until it is registered again — ccTLD
// registries take deleted names out of the zone (.eu quarantine, DENIC
// redemption) as gTLD registries do.
func (w *World) dnsEvidence(di int32, day int32) *lifecycle.DNSEvidence {
	d := &w.domains[di]
	ns := w.hostingNS[d.hosting]
	switch w.stateOn(d, day) {
	case stateRedemption, statePendingDelete:
		return &lifecycle.DNSEvidence{Rcode: "NXDOMAIN"}
	case stateLapsing:
		if d.park {
			ns = w.parkingNS[int(d.hosting)%numParkingSets]
		}
	case stateAuctioned, stateGraceSold, stateTaken:
		ns = w.attackNS
	}
	return &lifecycle.DNSEvidence{Delegated: true, Rcode: "NOERROR", Nameservers: ns}
}

// DNSOnly runs the DNS-evidence rules (lifecycle.ClassifyDNS, Decide,
// NextCheck, PendingUndelegation) on the world's domains put on ccTLDs
// without RDAP (share of the organisation and custom domains; ≤ 0:
// DefaultNoRDAPShare), with the default recheck interval and confirmation
// time, and reports how many lapses were caught before the attacker's
// day. Without DNS evidence those domains are unmonitored and nothing is
// ever caught.
func (w *World) DNSOnly(ctx context.Context, share float64, confirm time.Duration) (DNSOnlyResult, error) {
	if share <= 0 {
		share = DefaultNoRDAPShare
	}
	if share > 1 {
		return DNSOnlyResult{}, fmt.Errorf("simulate: no-RDAP share %g above 1", share)
	}
	res := DNSOnlyResult{Share: share}
	without := DNSOnlyResult{Share: share}
	if err := w.dnsOnlyRun(ctx, &res, share, confirm, true); err != nil {
		return res, err
	}
	if err := w.dnsOnlyRun(ctx, &without, share, confirm, false); err != nil {
		return res, err
	}
	res.PreventedPctNoDNS = without.PreventedPct
	return res, nil
}

// dnsOnlyRun runs the domains on ccTLDs without RDAP once, with or without
// DNS evidence (without: every lookup has no source, as the auto provider
// with DNS evidence off sees them; they are checked weekly as
// unmonitored and never decided).
func (w *World) dnsOnlyRun(ctx context.Context, res *DNSOnlyResult, share float64, confirm time.Duration, withDNS bool) error {
	sched := lifecycle.ScheduleConfig{}.WithDefaults()
	days := int32(w.cfg.Days + w.cfg.TailDays)
	rnd := splitRand(w.cfg.Seed ^ 0xd25)
	interval := int64(sched.RecheckInterval / time.Second)
	dnsOn := func(di int32, day int32) *lifecycle.DNSEvidence {
		if !withDNS {
			return nil
		}
		return w.dnsEvidence(di, day)
	}
	for di := range w.domains {
		if di%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		id := int32(di)
		if !w.dnsOnlyDomain(id, share) {
			continue
		}
		d := &w.domains[di]
		res.Domains++
		res.Addresses += int(d.addrN)
		// Steady state: last checked within the interval before the start.
		first := w.dayUnix(0) - 1 - int64(rnd()*float64(interval))
		prev := lifecycle.Observation{Domain: d.name, Phase: lifecycle.PhaseActive, Evidence: lifecycle.Evidence{
			Provider: lifecycle.ProviderDNS, DNS: dnsOn(id, 0), ObservedAt: time.Unix(first, 0).UTC()}}
		next := lifecycle.NextCheck(d.name, prev.Phase, &prev.Evidence, nil, prev.Evidence.ObservedAt, sched, rnd)
		unverifiedAt := int64(0)
		state := lifecycle.DomainState{Phase: prev.Phase, Evidence: &prev.Evidence, ObservedAt: prev.Evidence.ObservedAt}
		for next.Unix() < w.dayUnix(days) {
			at := next
			day := int32((at.Unix() - w.dayUnix(0)) / secondsPerDay)
			res.DNSLookups++
			ev := lifecycle.Evidence{Provider: lifecycle.ProviderDNS, DNS: dnsOn(id, day), ObservedAt: at}
			phase, _, kept := lifecycle.ClassifyDNS(ev, &prev, at, confirm)
			obs := lifecycle.Observation{Domain: d.name, Phase: phase, Evidence: kept}
			if phase.Known() && lifecycle.Changed(&prev, obs) {
				var verified []lifecycle.Address
				if unverifiedAt == 0 {
					verified = w.addresses[d.addrOff : d.addrOff+d.addrN]
				}
				dec := lifecycle.Decide(state, obs, verified, lifecycle.Policy{MaxUnverifyPerDomain: -1})
				if len(dec.Unverify) == int(d.addrN) && unverifiedAt == 0 {
					unverifiedAt = at.Unix()
				}
				state = lifecycle.DomainState{Phase: phase, Evidence: &obs.Evidence, ObservedAt: at}
			}
			if phase.Known() {
				prev = obs
			}
			next = lifecycle.NextCheck(d.name, prev.Phase, &prev.Evidence, nil, at, sched, rnd)
			if ev.DNS == nil {
				next = lifecycle.NextUnmonitoredCheck(at, rnd) // no source at all
			}
		}
		if !d.fate.Lapsed() {
			if unverifiedAt != 0 {
				res.FalseUnverified += int(d.addrN)
			}
			continue
		}
		res.Lapses++
		caught := unverifiedAt != 0 && unverifiedAt < w.dayUnix(d.takeDay)
		switch d.fate {
		case FateLapseDrop:
			res.Drops++
			if caught {
				res.PreventedDrops++
			}
		case FateLapseAuction:
			res.Auctions++
		case FateGraceSale:
			res.GraceSales++
		}
		if caught {
			res.Prevented++
		}
	}
	if res.Lapses > 0 {
		res.PreventedPct = 100 * float64(res.Prevented) / float64(res.Lapses)
	}
	return nil
}

// splitRand is a deterministic source of [0,1) from seed.
func splitRand(seed uint64) func() float64 {
	x := seed
	return func() float64 {
		x++
		return float64(splitmix(x)>>11) / (1 << 53)
	}
}
