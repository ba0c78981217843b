package simulate

import (
	"errors"
	"fmt"
	"time"
)

// Config describes the simulated world. The zero value of a field means
// its default (filled by WithDefaults); LapseRate and FailureRate take a
// negative value (NoLapses, NoFailures) to mean 0.
type Config struct {
	// Seed makes the run reproducible. Default 1.
	Seed uint64
	// Addresses is the number of verified email addresses. Default 1,000,000.
	Addresses int
	// Days is the simulated period in which expirations fall. Default 365.
	Days int
	// TailDays extends the run past Days so that every lapse that started
	// in the period ends (deletion ≤ 45 + redemption 30 + pending delete
	// 5 days). Default 90.
	TailDays int
	// Start is the first simulated day (UTC midnight). Default 2025-01-01.
	Start time.Time

	// ProviderDomains is the number of large mailbox providers. Default 20.
	ProviderDomains int
	// ProviderShare is the share of addresses at large mailbox providers
	// (Zipf-split among them; they never lapse and are protected).
	// Default 0.55.
	ProviderShare float64
	// OrgShare is the share of addresses on organisation domains (sizes
	// Pareto-distributed from 4, capped at 20,000). Default 0.15. The rest
	// are custom domains with 1–3 addresses (70/20/10 %).
	OrgShare float64

	// LapseRate is the yearly probability that a custom domain lapses.
	// Default 0.03; negative means 0 (see NoLapses).
	LapseRate float64
	// OrgLapseFactor scales LapseRate for organisation domains. Default 0.2.
	OrgLapseFactor float64
	// GraceRenewRate is the share of healthy renewals that happen during
	// the auto-renew period (statuses show "auto renew period", nameservers
	// unchanged, no hold). Default 0.3.
	GraceRenewRate float64
	// GraceRenewMaxDays: a grace renewal ends 1..this many days after
	// expiry. Default 45.
	GraceRenewMaxDays int
	// EarlyRenewMaxDays: other renewals happen 1..this many days before
	// expiry. Default 60.
	EarlyRenewMaxDays int

	// LapseSignMaxDays: a lapse shows its sign (hold and/or parking
	// nameservers) 0..this many days after expiry. Default 5.
	LapseSignMaxDays int
	// HoldShare and ParkShare are the probabilities that a lapse puts
	// "client hold" and moves the nameservers to registrar parking (at
	// least one of them always happens). Default 0.6 each.
	HoldShare, ParkShare float64
	// AuctionRate is the share of lapses sold at an expiry auction during
	// grace (new owner, same registration date and handle). Default 0.3.
	AuctionRate float64
	// GraceSaleRate is the share of lapses the registrar sells during the
	// auto-renew grace before any lapse sign (GoDaddy/NameJet/SnapNames
	// style): the name keeps resolving until the sale on an auction day,
	// then the buyer has it with the same registrar, handle and
	// registration date and his own nameservers, shown active with the
	// renewed expiry. Nothing shows before the sale, so no policy can
	// unverify before it: Result.GraceSalesCaught counts those unverified
	// within a day after. Default 0.1; negative means 0.
	GraceSaleRate float64
	// AuctionMinDay, AuctionMaxDay: auction (and grace sale) day after
	// expiry. Default 25, 35.
	AuctionMinDay, AuctionMaxDay int
	// DeleteMinDay, DeleteMaxDay: deletion day after expiry for lapses not
	// auctioned. Default 30, 45.
	DeleteMinDay, DeleteMaxDay int
	// RedemptionDays and PendingDeleteDays: lengths of those phases.
	// Default 30 and 5. The name is released, and re-registered by the
	// attacker, on the day after pending delete ends.
	RedemptionDays, PendingDeleteDays int

	// FailureRate is the probability that one lookup fails (timeout, rate
	// limit). Default 0.01; negative means 0.
	FailureRate float64
	// HoldApproval is how long an operator takes to approve a held
	// decision (DESIGN.md §3 guard). Default 24h.
	HoldApproval time.Duration
}

// NoLapses is a LapseRate, NoFailures a FailureRate, that means 0 (a zero
// field means the default).
const (
	NoLapses   = -1
	NoFailures = -1
)

// DefaultStart is the first simulated day.
var DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setFloat := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	setInt(&c.Addresses, 1_000_000)
	setInt(&c.Days, 365)
	setInt(&c.TailDays, 90)
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	setInt(&c.ProviderDomains, 20)
	setFloat(&c.ProviderShare, 0.55)
	setFloat(&c.OrgShare, 0.15)
	setFloat(&c.LapseRate, 0.03)
	setFloat(&c.OrgLapseFactor, 0.2)
	setFloat(&c.GraceRenewRate, 0.3)
	setInt(&c.GraceRenewMaxDays, 45)
	setInt(&c.EarlyRenewMaxDays, 60)
	setInt(&c.LapseSignMaxDays, 5)
	setFloat(&c.HoldShare, 0.6)
	setFloat(&c.ParkShare, 0.6)
	setFloat(&c.AuctionRate, 0.3)
	setFloat(&c.GraceSaleRate, 0.1)
	setInt(&c.AuctionMinDay, 25)
	setInt(&c.AuctionMaxDay, 35)
	setInt(&c.DeleteMinDay, 30)
	setInt(&c.DeleteMaxDay, 45)
	setInt(&c.RedemptionDays, 30)
	setInt(&c.PendingDeleteDays, 5)
	setFloat(&c.FailureRate, 0.01)
	if c.HoldApproval == 0 {
		c.HoldApproval = 24 * time.Hour
	}
	return c
}

// lapseRate and failureRate turn the "negative means 0" convention into
// the rate.
func (c Config) lapseRate() float64     { return max(c.LapseRate, 0) }
func (c Config) failureRate() float64   { return max(c.FailureRate, 0) }
func (c Config) graceSaleRate() float64 { return max(c.GraceSaleRate, 0) }

// Validate checks a configuration after WithDefaults.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Addresses > 0, "addresses must be positive, got %d", c.Addresses)
	check(c.Days > 0 && c.TailDays >= 0, "days must be positive and tail days not negative")
	check(c.ProviderDomains > 0, "provider domains must be positive")
	check(c.ProviderShare >= 0 && c.OrgShare >= 0 && c.ProviderShare+c.OrgShare < 1,
		"provider share %.2f + org share %.2f must leave room for custom domains", c.ProviderShare, c.OrgShare)
	for _, r := range []struct {
		name string
		v    float64
	}{{"lapse rate", c.lapseRate()}, {"grace renew rate", c.GraceRenewRate}, {"hold share", c.HoldShare},
		{"park share", c.ParkShare}, {"auction rate", c.AuctionRate}, {"grace sale rate", c.graceSaleRate()}, {"failure rate", c.failureRate()}} {
		check(r.v >= 0 && r.v <= 1, "%s must be within [0,1], got %g", r.name, r.v)
	}
	check(c.lapseRate()*c.OrgLapseFactor <= 1 && c.OrgLapseFactor >= 0, "org lapse factor out of range")
	check(c.GraceRenewMaxDays >= 1 && c.GraceRenewMaxDays <= 45, "grace renew max days must be within 1..45")
	check(c.EarlyRenewMaxDays >= 1, "early renew max days must be positive")
	check(c.LapseSignMaxDays >= 0 && c.LapseSignMaxDays < c.AuctionMinDay && c.LapseSignMaxDays < c.DeleteMinDay,
		"lapse sign max days must be before the auction and deletion days")
	check(c.AuctionMinDay <= c.AuctionMaxDay && c.AuctionMaxDay <= 45, "auction days must be ordered and within grace (≤45)")
	check(c.DeleteMinDay <= c.DeleteMaxDay && c.DeleteMaxDay <= 45, "delete days must be ordered and within grace (≤45)")
	check(c.RedemptionDays > 0 && c.PendingDeleteDays > 0, "redemption and pending delete days must be positive")
	check(c.HoldApproval >= 0, "hold approval must not be negative")
	if len(errs) > 0 {
		return fmt.Errorf("simulate config: %w", errors.Join(errs...))
	}
	return nil
}
