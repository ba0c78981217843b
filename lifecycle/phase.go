package lifecycle

import (
	"slices"
	"strings"
	"time"

	"github.com/domainguard/domainguard/internal/redact"
)

// Phase is the normalised registration phase of a domain (DESIGN.md §2).
type Phase string

// The phases, in the order a lapsing gTLD passes through them.
const (
	PhaseActive        Phase = "active"
	PhaseGrace         Phase = "grace"
	PhaseExpired       Phase = "expired"
	PhaseRedemption    Phase = "redemption"
	PhasePendingDelete Phase = "pending_delete"
	PhaseReleased      Phase = "released"
	PhaseUnknown       Phase = "unknown"
)

// Phases lists every phase.
var Phases = []Phase{PhaseActive, PhaseGrace, PhaseExpired, PhaseRedemption, PhasePendingDelete, PhaseReleased, PhaseUnknown}

// Valid reports whether p is one of the defined phases.
func (p Phase) Valid() bool { return slices.Contains(Phases, p) }

// Known reports whether p carries a decision (everything but unknown).
func (p Phase) Known() bool { return p.Valid() && p != PhaseUnknown }

// Lapsed reports whether p unverifies addresses in every mode: the name is
// lapsing or gone, so its mail may soon reach someone else.
func (p Phase) Lapsed() bool {
	switch p {
	case PhaseExpired, PhaseRedemption, PhasePendingDelete, PhaseReleased:
		return true
	}
	return false
}

// Reason says why an address was unverified (DESIGN.md §3).
type Reason string

// The unverification reasons.
const (
	ReasonExpired       Reason = "domain_expired"
	ReasonRedemption    Reason = "domain_redemption"
	ReasonPendingDelete Reason = "domain_pending_delete"
	ReasonReleased      Reason = "domain_released"
	ReasonReregistered  Reason = "domain_reregistered"
	// ReasonGrace is used only in strict mode, where grace unverifies too.
	ReasonGrace Reason = "domain_grace"
	// ReasonUndelegated: the DNS alone saw the lapse (a TLD without RDAP):
	// the parent zone stopped delegating a name it had delegated, confirmed
	// on two lookups DOMAINGUARD_UNDELEGATED_CONFIRM apart (ClassifyDNS).
	ReasonUndelegated Reason = "domain_undelegated"
)

// Reasons lists every unverification reason.
var Reasons = []Reason{ReasonExpired, ReasonRedemption, ReasonPendingDelete, ReasonReleased, ReasonReregistered, ReasonGrace, ReasonUndelegated}

// Valid reports whether r is one of the defined reasons.
func (r Reason) Valid() bool { return slices.Contains(Reasons, r) }

// ReasonFor maps a phase to the reason an address on it is unverified; ""
// for phases that do not unverify by themselves.
func ReasonFor(p Phase) Reason {
	switch p {
	case PhaseExpired:
		return ReasonExpired
	case PhaseRedemption:
		return ReasonRedemption
	case PhasePendingDelete:
		return ReasonPendingDelete
	case PhaseReleased:
		return ReasonReleased
	case PhaseGrace:
		return ReasonGrace
	}
	return ""
}

// Evidence is what a provider said about a domain, kept with every
// observation so that decisions can be explained and compared later.
type Evidence struct {
	// Provider names the source: "rdap", "domainr", "fastly", "dns".
	Provider string `json:"provider"`
	// Server is the base URL that answered, where known.
	Server string `json:"server,omitempty"`
	// Statuses are the raw status values (RDAP status strings or
	// Domainr/Fastly tokens), lower case.
	Statuses []string `json:"statuses,omitempty"`
	// RegisteredAt, ExpiresAt, LastChangedAt, DeletionAt come from RDAP events.
	RegisteredAt  *time.Time `json:"registered_at,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	LastChangedAt *time.Time `json:"last_changed_at,omitempty"`
	DeletionAt    *time.Time `json:"deletion_at,omitempty"`
	// Handle is the registry's object handle (ROID); a new one means a new
	// registration.
	Handle string `json:"handle,omitempty"`
	// RegistrarIANAID is the sponsoring registrar's IANA id.
	RegistrarIANAID string `json:"registrar_iana_id,omitempty"`
	// Nameservers are lower-case host names, sorted.
	Nameservers []string `json:"nameservers,omitempty"`
	// NotFound is set when the authoritative server answered 404 and a
	// canary lookup on that server had just succeeded.
	NotFound bool `json:"not_found,omitempty"`
	// Baseline, inside a grace-sale window, is the last active observation
	// before the expiration date that this one was compared with
	// (GraceBaseline); nil outside the window.
	Baseline *Baseline `json:"baseline,omitempty"`
	// Detail explains an unknown answer (error, missing service, ...).
	Detail string `json:"detail,omitempty"`
	// DNS is the DNS evidence of the same moment (parent zone delegation,
	// MX, SOA), nil when DNS evidence is off or could not be had.
	DNS *DNSEvidence `json:"dns,omitempty"`
	// ObservedAt is when the provider answered.
	ObservedAt time.Time `json:"observed_at"`
}

// Observation is one classified lookup of a registrable domain.
type Observation struct {
	Domain   string   `json:"domain"`
	Phase    Phase    `json:"phase"`
	Evidence Evidence `json:"evidence"`
}

// Clean returns e with control characters (NUL among them) removed from
// every text field. Provider answers are outside input: PostgreSQL's jsonb
// refuses a NUL, so one stray byte in an RDAP answer would otherwise make
// the enforcer fail on the change forever. It also drops credentials from
// Server and Detail: evidence is stored and published, and a server's
// configured URL may carry a password (DOMAINGUARD_RDAP_OVERRIDES).
func (e Evidence) Clean() Evidence {
	e.Provider = cleanText(e.Provider)
	e.Server = redact.WithoutCredentials(cleanText(e.Server))
	e.Handle = cleanText(e.Handle)
	e.RegistrarIANAID = cleanText(e.RegistrarIANAID)
	e.Detail = redact.Text(cleanText(e.Detail))
	e.Statuses = cleanAll(e.Statuses)
	e.Nameservers = cleanAll(e.Nameservers)
	e.DNS = e.DNS.clean()
	if e.Baseline != nil {
		b := *e.Baseline
		b.RegistrarIANAID = cleanText(b.RegistrarIANAID)
		b.Nameservers = cleanAll(b.Nameservers)
		e.Baseline = &b
	}
	return e
}

func cleanAll(ss []string) []string {
	for i, s := range ss {
		if c := cleanText(s); c != s {
			out := slices.Clone(ss)
			for j := i; j < len(out); j++ {
				out[j] = cleanText(out[j])
			}
			return out
		}
	}
	return ss
}

func cleanText(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
