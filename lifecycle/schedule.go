package lifecycle

import (
	"errors"
	"fmt"
	"time"
)

// Scheduling constants (DESIGN.md §8).
const (
	// DefaultRecheckInterval is DOMAINGUARD_RECHECK_INTERVAL's default.
	DefaultRecheckInterval = 720 * time.Hour
	// MinRecheckInterval is the shortest recheck interval: daily checks
	// already cover the domains that need more.
	MinRecheckInterval = time.Hour
	// DefaultJitter is the default jitter fraction of the recheck interval.
	DefaultJitter = 0.1
	// DailyCheckEvery is the period of daily checks (near expiry, grace,
	// lapsing and recently released domains).
	DailyCheckEvery = 24 * time.Hour
	// DailyJitter spreads daily (and weekly) checks by ± this much.
	DailyJitter = time.Hour
	// ExpiryMargin: an active domain is checked no later than this before
	// its expiration date, and daily from then on.
	ExpiryMargin = 24 * time.Hour
	// ReleasedDailyFor is how long a released domain is checked daily.
	ReleasedDailyFor = 45 * 24 * time.Hour
	// ReleasedCheckEvery is the period of checks of a long-released domain.
	ReleasedCheckEvery = 7 * 24 * time.Hour
	// UnmonitoredCheckEvery is the period of checks of a domain whose TLD
	// no source of evidence covers (state unmonitored): weekly.
	UnmonitoredCheckEvery = 7 * 24 * time.Hour
	// ExpiringSoon: an active domain expiring within this is urgent
	// (UrgencyRule).
	ExpiringSoon = 30 * 24 * time.Hour
)

// retryDelays are the delays after the 1st, 2nd and 3rd+ failed lookup.
var retryDelays = []time.Duration{time.Hour, 4 * time.Hour, 24 * time.Hour}

// ScheduleConfig sets how often healthy domains are checked.
type ScheduleConfig struct {
	// RecheckInterval is the period of checks of active domains. Default
	// 720h when 0.
	RecheckInterval time.Duration
	// Jitter spreads interval schedules by ± this fraction of the interval.
	// Default 0.1 when 0; negative: no jitter.
	Jitter float64
}

// WithDefaults returns c with zero fields set to their defaults.
func (c ScheduleConfig) WithDefaults() ScheduleConfig {
	if c.RecheckInterval == 0 {
		c.RecheckInterval = DefaultRecheckInterval
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	}
	return c
}

// Validate reports every setting that cannot work. Call it on the result
// of WithDefaults.
func (c ScheduleConfig) Validate() error {
	var errs []error
	if c.RecheckInterval < MinRecheckInterval {
		errs = append(errs, errors.New("recheck interval must be at least 1h"))
	}
	if c.Jitter >= 0.5 {
		errs = append(errs, errors.New("jitter must be below 0.5 of the interval"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("schedule config: %w", err)
	}
	return nil
}

// ValidateRecheckInterval reports a recheck interval outside
// MinRecheckInterval..MaxRecheckInterval (DOMAINGUARD_RECHECK_INTERVAL):
// the bound of the shipped roles. (A ScheduleConfig alone, as the
// simulator runs it, may be longer, to measure what that misses.)
func ValidateRecheckInterval(d time.Duration) error {
	switch {
	case d < MinRecheckInterval:
		return fmt.Errorf("%s: want at least 1h", d)
	case d > MaxRecheckInterval:
		return fmt.Errorf("%s: want at most %s — a deleted name can be released %s after deletion (DENIC's redemption grace period), so a longer interval can miss a whole lapse between two checks",
			d, MaxRecheckInterval, MaxRecheckInterval)
	}
	return nil
}

// spread returns a uniformly random offset in [-span, span) from rnd (a
// source of [0,1) such as math/rand/v2.Float64); 0 when rnd is nil.
func spread(span time.Duration, rnd func() float64) time.Duration {
	if rnd == nil || span <= 0 {
		return 0
	}
	r := rnd()
	if r < 0 || r >= 1 || r != r { // defend against a bad source
		r = 0.5
	}
	return time.Duration((2*r - 1) * float64(span))
}

// NextCheck returns when domain in phase, with the evidence ev (may be
// nil), should be checked next after a lookup at now (DESIGN.md §8).
// releasedSince is when the domain was first seen released (nil: now).
// rnd supplies jitter in [0,1); nil means none.
//
//   - active with expiration E: the earlier of now+interval and E−1 day; from
//     E−1 day on, daily. Interval schedules are jittered by ±Jitter×interval
//     but never past E−1 day.
//   - active on a registry that auto-renews without showing it
//     (Profile.SilentRenewalWindow): daily until the grace after the
//     anniversary would have ended.
//   - active without expiration: now+interval (jittered).
//   - a name the DNS saw leave the zone, awaiting confirmation
//     (PendingUndelegation): a day later, never less.
//   - grace, expired, redemption, pending_delete: daily (±1h).
//   - released: daily for 45 days after releasedSince, then weekly (±1h).
//   - unknown: like the first failed lookup (about 1h).
func NextCheck(domain string, phase Phase, ev *Evidence, releasedSince *time.Time, now time.Time, cfg ScheduleConfig, rnd func() float64) time.Time {
	cfg = cfg.WithDefaults()
	daily := func() time.Time { return now.Add(DailyCheckEvery + spread(DailyJitter, rnd)) }
	if PendingUndelegation(phase, ev) {
		// DNS-only confirmation: look again a day (never less) later.
		return now.Add(DailyCheckEvery + max(spread(DailyJitter, rnd), 0))
	}
	switch phase {
	case PhaseActive:
		var jitter time.Duration
		if cfg.Jitter > 0 {
			jitter = spread(time.Duration(cfg.Jitter*float64(cfg.RecheckInterval)), rnd)
		}
		next := now.Add(cfg.RecheckInterval + jitter)
		if ev == nil || ev.ExpiresAt == nil {
			return next
		}
		limit := ev.ExpiresAt.Add(-ExpiryMargin)
		if !now.Before(limit) || ProfileFor(domain).SilentRenewalWindow(*ev.ExpiresAt, now) {
			return daily()
		}
		if next.After(limit) {
			return limit
		}
		return next
	case PhaseGrace, PhaseExpired, PhaseRedemption, PhasePendingDelete:
		return daily()
	case PhaseReleased:
		if releasedSince != nil && now.Sub(*releasedSince) >= ReleasedDailyFor {
			return now.Add(ReleasedCheckEvery + spread(DailyJitter, rnd))
		}
		return daily()
	default:
		return RetryAfterFailure(1, now, rnd)
	}
}

// NextUnmonitoredCheck returns when to look again at a domain no source
// of evidence covers: in a week (±1h), since a source can appear (a new
// RDAP service, a configured server or provider).
func NextUnmonitoredCheck(now time.Time, rnd func() float64) time.Time {
	return now.Add(UnmonitoredCheckEvery + spread(DailyJitter, rnd))
}

// RetryAfterFailure returns when to retry after the given number of
// consecutive failed lookups (1 for the first): about 1h, 4h, then 24h,
// each spread by ±10%.
func RetryAfterFailure(failures int, now time.Time, rnd func() float64) time.Time {
	i := min(max(failures, 1), len(retryDelays)) - 1
	d := retryDelays[i]
	return now.Add(d + spread(d/10, rnd))
}
