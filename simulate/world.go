package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// DomainClass is the kind of a simulated domain.
type DomainClass uint8

// The domain classes.
const (
	ClassProvider DomainClass = iota // large mailbox provider: never lapses, protected
	ClassOrg                         // organisation with 4..20,000 addresses
	ClassCustom                      // custom domain with 1–3 addresses
)

// Fate is what happens to a domain at its expiration in the period.
type Fate uint8

// The fates.
const (
	FateRenewEarly   Fate = iota // renewed 1..EarlyRenewMaxDays before expiry
	FateRenewGrace               // renewed during the auto-renew period
	FateLapseAuction             // lapses, sold at an expiry auction during grace
	FateLapseDrop                // lapses, deleted, released, re-registered on the drop day
	FateGraceSale                // sold by the registrar in grace before any lapse sign
)

// Lapsed reports whether the fate hands the name to an attacker.
func (f Fate) Lapsed() bool { return f == FateLapseAuction || f == FateLapseDrop || f == FateGraceSale }

// domain is one simulated registrable domain. Days are relative to the
// first simulated day (negative: before it).
type domain struct {
	name    string
	handle  string // registry handle of the original registration
	addrOff int32  // first address index
	addrN   int32  // number of addresses
	class   DomainClass
	fate    Fate
	hold    bool  // lapse puts client hold
	park    bool  // lapse moves nameservers to parking
	hosting int16 // index of the hosting nameserver set
	regDay  int32 // original registration day
	expDay  int32 // E: expiration day within the period
	// renewDay: FateRenewEarly E−k, FateRenewGrace E+g. Later expirations
	// renew renewLead days early.
	renewDay  int32
	renewLead int32
	signDay   int32 // lapses: first day with hold and/or parking
	takeDay   int32 // lapses: the day the attacker owns the name
	deleteDay int32 // FateLapseDrop: deletion (redemption starts)
}

// World is a generated population of domains and addresses; it is
// read-only after NewWorld, so several policies can run on one World (also
// concurrently).
type World struct {
	cfg     Config
	domains []domain
	// addrDomain maps an address index to its domain index.
	addrDomain []int32
	// verifiedAt of every address, unix seconds.
	verifiedAt []int64
	// addresses are the lifecycle.Address values handed to Decide, in
	// address order (UserID and Email are left empty: the simulation
	// tracks addresses by index).
	addresses []lifecycle.Address
	hostingNS [][]string
	parkingNS [][]string
	attackNS  []string
	// dropHandle is the registry handle after an attacker re-registers a
	// dropped name, per domain ("" for others).
	dropHandle map[int32]string
}

// Shared, read-only status sets (RDAP status values, Domainr tokens).
var (
	stActive        = []string{"client transfer prohibited"}
	stAutoRenew     = []string{"auto renew period", "client transfer prohibited"}
	stHoldAutoRenew = []string{"auto renew period", "client hold", "client transfer prohibited"}
	stRedemption    = []string{"pending delete", "redemption period"}
	stPendingDelete = []string{"pending delete"}

	tokActive        = []string{"active"}
	tokParked        = []string{"active", "parked"}
	tokUndelegated   = []string{"undelegated", "active"}
	tokExpiring      = []string{"undelegated", "expiring"}
	tokDeleting      = []string{"undelegated", "deleting"}
	customTLDs       = []string{"com", "com", "com", "com", "com", "com", "net", "org", "info", "xyz"}
	numHostingSets   = 500
	numParkingSets   = 8
	orgParetoAlpha   = 1.2
	orgMinAddresses  = 4.0
	orgMaxAddresses  = 20_000.0
	secondsPerDay    = int64(24 * 3600)
	verifiedBeforeBy = 30 // days: every address was verified at least this long before the start
)

// NewWorld draws a world from cfg (after WithDefaults and Validate).
func NewWorld(cfg Config) (*World, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed_d0a1))
	w := &World{cfg: cfg, dropHandle: map[int32]string{}}
	for i := range numHostingSets {
		w.hostingNS = append(w.hostingNS, []string{fmt.Sprintf("ns1.host%d.net", i), fmt.Sprintf("ns2.host%d.net", i)})
	}
	for i := range numParkingSets {
		w.parkingNS = append(w.parkingNS, []string{fmt.Sprintf("ns1.parking%d.example", i), fmt.Sprintf("ns2.parking%d.example", i)})
	}
	w.attackNS = []string{"ns1.dropcatch.example", "ns2.dropcatch.example"}

	n := cfg.Addresses
	providerAddrs := int(math.Round(float64(n) * cfg.ProviderShare))
	orgAddrs := int(math.Round(float64(n) * cfg.OrgShare))
	// Providers: Zipf(1) split of providerAddrs.
	if providerAddrs > 0 {
		var h float64
		for i := 1; i <= cfg.ProviderDomains; i++ {
			h += 1 / float64(i)
		}
		left := providerAddrs
		for i := 1; i <= cfg.ProviderDomains && left > 0; i++ {
			size := int(math.Round(float64(providerAddrs) / h / float64(i)))
			if i == cfg.ProviderDomains || size > left {
				size = left
			}
			if size < 1 {
				size = 1
			}
			w.addDomain(rng, ClassProvider, size, fmt.Sprintf("mail%d.com", i))
			left -= size
		}
	}
	for left := orgAddrs; left > 0; {
		size := int(orgMinAddresses / math.Pow(1-rng.Float64(), 1/orgParetoAlpha))
		size = min(size, int(orgMaxAddresses), left)
		w.addDomain(rng, ClassOrg, size, fmt.Sprintf("org%d.%s", len(w.domains), customTLDs[rng.IntN(len(customTLDs))]))
		left -= size
	}
	for left := n - len(w.addrDomain); left > 0; {
		size := 1
		switch r := rng.Float64(); {
		case r >= 0.9:
			size = 3
		case r >= 0.7:
			size = 2
		}
		size = min(size, left)
		w.addDomain(rng, ClassCustom, size, fmt.Sprintf("c%d.%s", len(w.domains), customTLDs[rng.IntN(len(customTLDs))]))
		left -= size
	}
	w.addresses = make([]lifecycle.Address, len(w.verifiedAt))
	for i, v := range w.verifiedAt {
		w.addresses[i].VerifiedAt = time.Unix(v, 0).UTC()
	}
	return w, nil
}

func (w *World) addDomain(rng *rand.Rand, class DomainClass, size int, name string) {
	c := &w.cfg
	idx := int32(len(w.domains))
	d := domain{
		name:    name,
		handle:  fmt.Sprintf("%d_DOMAIN-VRSN", 1000000+int(idx)),
		addrOff: int32(len(w.addrDomain)),
		addrN:   int32(size),
		class:   class,
		hosting: int16(rng.IntN(numHostingSets)),
		regDay:  -int32(60 + rng.IntN(15*365)),
		expDay:  int32(rng.IntN(c.Days)),
	}
	lapse := 0.0
	switch class {
	case ClassCustom:
		lapse = c.lapseRate()
	case ClassOrg:
		lapse = c.lapseRate() * c.OrgLapseFactor
	}
	lapsing := rng.Float64() < lapse
	switch {
	case lapsing && rng.Float64() < c.graceSaleRate():
		// Sold while it still resolves: no hold, no parking, no deletion.
		d.fate = FateGraceSale
		d.takeDay = d.expDay + int32(c.AuctionMinDay+rng.IntN(c.AuctionMaxDay-c.AuctionMinDay+1))
	case lapsing:
		d.fate = FateLapseDrop
		if rng.Float64() < c.AuctionRate {
			d.fate = FateLapseAuction
		}
		d.hold = rng.Float64() < c.HoldShare
		d.park = rng.Float64() < c.ParkShare
		if !d.hold && !d.park {
			d.hold = true
		}
		d.signDay = d.expDay + int32(rng.IntN(c.LapseSignMaxDays+1))
		if d.fate == FateLapseAuction {
			d.takeDay = d.expDay + int32(c.AuctionMinDay+rng.IntN(c.AuctionMaxDay-c.AuctionMinDay+1))
		} else {
			d.deleteDay = d.expDay + int32(c.DeleteMinDay+rng.IntN(c.DeleteMaxDay-c.DeleteMinDay+1))
			d.takeDay = d.deleteDay + int32(c.RedemptionDays+c.PendingDeleteDays)
			w.dropHandle[idx] = fmt.Sprintf("%d_DOMAIN-VRSN", 9000000+int(idx))
		}
	case rng.Float64() < c.GraceRenewRate:
		d.fate = FateRenewGrace
		d.renewDay = d.expDay + int32(1+rng.IntN(c.GraceRenewMaxDays))
	default:
		d.fate = FateRenewEarly
		d.renewDay = d.expDay - int32(1+rng.IntN(c.EarlyRenewMaxDays))
	}
	d.renewLead = int32(1 + rng.IntN(c.EarlyRenewMaxDays))
	// Addresses were verified between registration and the start.
	regSec := w.dayUnix(d.regDay)
	lastSec := w.dayUnix(-int32(verifiedBeforeBy))
	for range size {
		w.addrDomain = append(w.addrDomain, idx)
		w.verifiedAt = append(w.verifiedAt, regSec+secondsPerDay+rng.Int64N(lastSec-regSec-secondsPerDay))
	}
	w.domains = append(w.domains, d)
}

// dayUnix is the unix time of the start of a simulated day.
func (w *World) dayUnix(day int32) int64 { return w.cfg.Start.Unix() + int64(day)*secondsPerDay }

// dayTime is the start of a simulated day.
func (w *World) dayTime(day int32) time.Time { return time.Unix(w.dayUnix(day), 0).UTC() }

// Domains returns the number of domains; Addresses the number of addresses.
func (w *World) Domains() int   { return len(w.domains) }
func (w *World) Addresses() int { return len(w.addrDomain) }

// Config returns the configuration the world was drawn with (defaults filled).
func (w *World) Config() Config { return w.cfg }

// state is the registry's view of a domain on one day.
type state uint8

const (
	stateActive        state = iota
	stateGrace               // auto renew period, no lapse sign (healthy or not yet)
	stateLapsing             // auto renew period plus hold and/or parking
	stateAuctioned           // new owner after an auction, still in the auto renew period
	stateRedemption          // deleted, restorable
	statePendingDelete       // deleted, not restorable
	stateTaken               // attacker's registration (after a drop) or auction past grace
	stateGraceSold           // grace sale: the buyer's, shown active with the renewed expiry
)

// stateOn returns the registry state of domain d on day.
func (w *World) stateOn(d *domain, day int32) state {
	if !d.fate.Lapsed() {
		if d.fate == FateRenewGrace && day >= d.expDay && day < d.renewDay {
			return stateGrace
		}
		return stateActive
	}
	if d.fate == FateGraceSale {
		switch {
		case day < d.expDay:
			return stateActive
		case day < d.takeDay:
			return stateGrace
		}
		return stateGraceSold
	}
	switch {
	case day < d.expDay:
		return stateActive
	case day >= d.takeDay:
		if d.fate == FateLapseAuction && day < d.expDay+45 {
			return stateAuctioned
		}
		return stateTaken
	case d.fate == FateLapseDrop && day >= d.deleteDay+int32(w.cfg.RedemptionDays):
		return statePendingDelete
	case d.fate == FateLapseDrop && day >= d.deleteDay:
		return stateRedemption
	case day >= d.signDay:
		return stateLapsing
	}
	return stateGrace
}

// expiryOn returns the expiration day shown on day for a healthy
// registration: E until renewed, then one year later, renewed renewLead
// days early every following year.
func expiryOn(d *domain, day int32) int32 {
	if day < d.expDay && (d.fate != FateRenewEarly || day < d.renewDay) {
		return d.expDay
	}
	exp := d.expDay + 365
	for day >= exp-d.renewLead {
		exp += 365
	}
	return exp
}

// evidenceTimes backs the time pointers of one Evidence.
type evidenceTimes struct{ reg, exp time.Time }

// evidence fills ev with the RDAP answer for domain di on day, observed
// at observedAt. It does not allocate: slices are shared and read-only,
// time pointers point into t.
func (w *World) evidence(di int32, day int32, observedAt time.Time, ev *lifecycle.Evidence, t *evidenceTimes) {
	d := &w.domains[di]
	*ev = lifecycle.Evidence{Provider: "rdap", ObservedAt: observedAt, Handle: d.handle, RegistrarIANAID: "146"}
	t.reg = w.dayTime(d.regDay)
	ev.RegisteredAt = &t.reg
	ns := w.hostingNS[d.hosting]
	parking := w.parkingNS[int(d.hosting)%numParkingSets]
	switch w.stateOn(d, day) {
	case stateActive:
		t.exp = w.dayTime(expiryOn(d, day))
		ev.Statuses = stActive
	case stateGrace:
		// Registries such as .com already show the auto-renewed date.
		t.exp = w.dayTime(d.expDay + 365)
		ev.Statuses = stAutoRenew
	case stateLapsing:
		t.exp = w.dayTime(d.expDay + 365)
		ev.Statuses = stAutoRenew
		if d.hold {
			ev.Statuses = stHoldAutoRenew
		}
		if d.park {
			ns = parking
		}
	case stateAuctioned:
		t.exp = w.dayTime(d.expDay + 365)
		ev.Statuses = stAutoRenew
		ns = w.attackNS
	case stateRedemption, statePendingDelete:
		t.exp = w.dayTime(d.expDay + 365)
		ev.Statuses = stRedemption
		if w.stateOn(d, day) == statePendingDelete {
			ev.Statuses = stPendingDelete
		}
		if d.park {
			ns = parking
		}
	case stateGraceSold:
		// Sold within the registrar (pushed to the buyer's account): same
		// registrar, handle and registration date; the buyer points the
		// nameservers at his own.
		t.exp = w.dayTime(d.expDay + 365)
		ev.Statuses = stActive
		ns = w.attackNS
	case stateTaken:
		ns = w.attackNS
		ev.Statuses = stActive
		if d.fate == FateLapseDrop {
			t.reg = w.dayTime(d.takeDay)
			t.exp = w.dayTime(d.takeDay + 365)
			ev.Handle = w.dropHandle[di]
			ev.RegistrarIANAID = "1000"
		} else {
			t.exp = w.dayTime(d.expDay + 365)
		}
	}
	ev.ExpiresAt = &t.exp
	ev.Nameservers = ns
}

// tokens returns the Domainr status tokens for domain di on day.
func (w *World) tokens(di int32, day int32) []string {
	d := &w.domains[di]
	switch w.stateOn(d, day) {
	case stateLapsing:
		if d.hold {
			return tokUndelegated
		}
		return tokParked
	case stateRedemption:
		return tokExpiring
	case statePendingDelete:
		return tokDeleting
	}
	return tokActive
}

// failed reports whether the lookup of domain di at unix time at fails;
// a pure function of the seed, the domain and the time so that every
// policy sees the same provider.
func (w *World) failed(di int32, at int64) bool {
	r := w.cfg.failureRate()
	if r <= 0 {
		return false
	}
	x := splitmix(w.cfg.Seed ^ uint64(di)*0x9e3779b97f4a7c15 ^ uint64(at)*0xbf58476d1ce4e5b9)
	return float64(x>>11)/(1<<53) < r
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
