package lifecycle

import (
	"cmp"
	"slices"
	"time"
)

// Urgency orders due domains when work exceeds the daily lookup budget
// (DESIGN.md §8); lower is more urgent.
type Urgency int

// The urgencies.
const (
	UrgencyNeverChecked Urgency = iota
	UrgencyAtRisk               // expiring soon, grace or any non-active phase
	UrgencyRoutine
)

// DueDomain is what the urgency rule reads of a due domain: the columns of
// its domains row.
type DueDomain struct {
	Name  string
	Phase Phase
	// ExpiresAt is the expiration date of the last evidence (nil: none).
	ExpiresAt *time.Time
	// LastChecked is the last successful lookup; nil or the zero time:
	// never checked.
	LastChecked *time.Time
	// NextCheck is when the domain fell due.
	NextCheck time.Time
}

// UrgencyCond is a condition of the urgency rule. The conditions are data,
// not code, so that the rule is written once (UrgencyRule) and read twice:
// UrgencyOf evaluates it here, and the producer's sweep translates the same
// conditions into the SQL that pages through due domains. A new condition
// type needs both an evaluation here and a translation there (the producer
// refuses a condition it cannot translate).
type UrgencyCond interface {
	holds(d DueDomain, now time.Time) bool
}

// The conditions of the urgency rule.
type (
	// NeverChecked holds for a domain never looked up successfully.
	NeverChecked struct{}
	// PhaseIn holds for a domain in one of the phases.
	PhaseIn []Phase
	// ExpiresWithin holds for a domain with a known expiration date at
	// most this far after now (or already past).
	ExpiresWithin time.Duration
	// AnyOf holds when one of its conditions holds.
	AnyOf []UrgencyCond
	// Not holds when its condition does not.
	Not struct{ Cond UrgencyCond }
	// Always holds for every domain.
	Always struct{}
)

func (NeverChecked) holds(d DueDomain, _ time.Time) bool {
	return d.LastChecked == nil || d.LastChecked.IsZero()
}

func (c PhaseIn) holds(d DueDomain, _ time.Time) bool { return slices.Contains(c, d.Phase) }

func (c ExpiresWithin) holds(d DueDomain, now time.Time) bool {
	return d.ExpiresAt != nil && !d.ExpiresAt.After(now.Add(time.Duration(c)))
}

func (c AnyOf) holds(d DueDomain, now time.Time) bool {
	return slices.ContainsFunc(c, func(c UrgencyCond) bool { return c.holds(d, now) })
}

func (c Not) holds(d DueDomain, now time.Time) bool { return !c.Cond.holds(d, now) }

func (Always) holds(DueDomain, time.Time) bool { return true }

// UrgencyClass is one urgency of the rule and the condition that puts a
// due domain in it.
type UrgencyClass struct {
	Urgency Urgency
	Name    string // how the sweep reports its pass
	When    UrgencyCond
}

// urgencyRule is the urgency rule (DESIGN.md §8), most urgent class
// first: a due domain has the urgency of the first class whose condition
// holds, and the last class holds for every domain. Today: never checked;
// then at risk (not active, or active and expiring within ExpiringSoon);
// then routine. Within a class, the most overdue domain goes first
// (RankedDue.Compare).
var urgencyRule = []UrgencyClass{
	{UrgencyNeverChecked, "never checked", NeverChecked{}},
	{UrgencyAtRisk, "urgent", AnyOf{Not{PhaseIn{PhaseActive}}, ExpiresWithin(ExpiringSoon)}},
	{UrgencyRoutine, "routine", Always{}},
}

// UrgencyRule returns the urgency rule, most urgent class first: a due
// domain has the urgency of the first class whose condition holds, and the
// last class holds for every domain.
func UrgencyRule() []UrgencyClass { return slices.Clone(urgencyRule) }

// UrgencyOf ranks a due domain at now by UrgencyRule.
func UrgencyOf(d DueDomain, now time.Time) Urgency {
	for _, c := range urgencyRule {
		if c.When.holds(d, now) {
			return c.Urgency
		}
	}
	return urgencyRule[len(urgencyRule)-1].Urgency
}

// RankedDue is a due domain with its urgency at some time: its place in
// the order the sweep enqueues due domains.
type RankedDue struct {
	DueDomain
	Urgency Urgency
}

// Rank returns d with its urgency at now.
func Rank(d DueDomain, now time.Time) RankedDue {
	return RankedDue{DueDomain: d, Urgency: UrgencyOf(d, now)}
}

// Compare orders ranked due domains the way the sweep enqueues them: by
// urgency, then the most overdue first (smallest NextCheck), then by name
// (in byte order here; in the database's collation in the sweep, the same
// for the C collation).
func (a RankedDue) Compare(b RankedDue) int {
	return cmp.Or(
		cmp.Compare(a.Urgency, b.Urgency),
		a.NextCheck.Compare(b.NextCheck),
		cmp.Compare(a.Name, b.Name),
	)
}

// CompareDue orders due domains at now the way the sweep enqueues them
// (RankedDue.Compare).
func CompareDue(a, b DueDomain, now time.Time) int {
	return Rank(a, now).Compare(Rank(b, now))
}
