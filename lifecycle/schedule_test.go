package lifecycle

import (
	"testing"
	"time"
)

func constRnd(v float64) func() float64 { return func() float64 { return v } }

func TestNextCheck(t *testing.T) {
	cfg := ScheduleConfig{} // defaults: 720h, 0.1
	interval := 720 * time.Hour
	released := func(ago time.Duration) *time.Time { t := now.Add(-ago); return &t }
	tests := []struct {
		name          string
		phase         Phase
		ev            *Evidence
		releasedSince *time.Time
		cfg           ScheduleConfig
		rnd           func() float64
		want          time.Time
	}{
		{name: "active far from expiry", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(300 * day)}, want: now.Add(interval)},
		{name: "active far from expiry, nil rnd", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(300 * day)}, rnd: nil, want: now.Add(interval)},
		{name: "active, jitter low end", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(300 * day)}, rnd: constRnd(0), want: now.Add(interval - interval/10)},
		{name: "active, jitter high end", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(300 * day)}, rnd: constRnd(0.75), want: now.Add(interval + interval/20)},
		{name: "active, negative jitter disables", phase: PhaseActive, cfg: ScheduleConfig{Jitter: -1}, rnd: constRnd(0), want: now.Add(interval)},
		{name: "active, custom interval", phase: PhaseActive, cfg: ScheduleConfig{RecheckInterval: 48 * time.Hour}, want: now.Add(48 * time.Hour)},
		{name: "active, expiry within the interval: E-1d", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(10 * day)}, want: now.Add(9 * day)},
		{name: "active, jitter never past E-1d", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(31 * day)}, rnd: constRnd(0.99), want: now.Add(30 * day)},
		{name: "active, jitter may land before E-1d", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(31 * day)}, rnd: constRnd(0), want: now.Add(interval - interval/10)},
		{name: "active, exactly at E-1d: daily", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(day)}, want: now.Add(day)},
		{name: "active, past E-1d: daily", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(3 * time.Hour)}, want: now.Add(day)},
		{name: "active, expiry passed: daily", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(-3 * day)}, want: now.Add(day)},
		{name: "active, daily jitter", phase: PhaseActive, ev: &Evidence{ExpiresAt: at(time.Hour)}, rnd: constRnd(0), want: now.Add(day - time.Hour)},
		{name: "active without expiry (Domainr)", phase: PhaseActive, ev: &Evidence{Statuses: []string{"active"}}, want: now.Add(interval)},
		{name: "active, nil evidence", phase: PhaseActive, want: now.Add(interval)},
		{name: "grace", phase: PhaseGrace, ev: &Evidence{ExpiresAt: at(360 * day)}, want: now.Add(day)},
		{name: "expired", phase: PhaseExpired, want: now.Add(day)},
		{name: "redemption", phase: PhaseRedemption, want: now.Add(day)},
		{name: "pending delete", phase: PhasePendingDelete, want: now.Add(day)},
		{name: "pending delete, jitter", phase: PhasePendingDelete, rnd: constRnd(0.75), want: now.Add(day + 30*time.Minute)},
		{name: "released just now", phase: PhaseReleased, releasedSince: released(0), want: now.Add(day)},
		{name: "released, since unknown", phase: PhaseReleased, want: now.Add(day)},
		{name: "released 44 days", phase: PhaseReleased, releasedSince: released(44 * day), want: now.Add(day)},
		{name: "released 45 days: weekly", phase: PhaseReleased, releasedSince: released(45 * day), want: now.Add(7 * day)},
		{name: "released a year: weekly with jitter", phase: PhaseReleased, releasedSince: released(365 * day), rnd: constRnd(0), want: now.Add(7*day - time.Hour)},
		{name: "unknown: retry in about 1h", phase: PhaseUnknown, want: now.Add(time.Hour)},
		{name: "invalid phase: retry in about 1h", phase: "bogus", want: now.Add(time.Hour)},
		{name: "bad random source is ignored", phase: PhaseExpired, rnd: constRnd(7), want: now.Add(day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rnd := tt.rnd
			if rnd == nil && tt.name != "active far from expiry, nil rnd" {
				rnd = constRnd(0.5)
			}
			c := cfg
			if tt.cfg != (ScheduleConfig{}) {
				c = tt.cfg
			}
			got := NextCheck("example.com", tt.phase, tt.ev, tt.releasedSince, now, c, rnd)
			if !got.Equal(tt.want) {
				t.Fatalf("NextCheck = %v (now%+v), want %v (now%+v)", got, got.Sub(now), tt.want, tt.want.Sub(now))
			}
		})
	}
}

// Property: whatever the jitter, an active domain with an expiration date
// is checked no later than a day before it, and always in the future.
func TestNextCheckNeverPastExpiryMargin(t *testing.T) {
	for _, r := range []float64{0, 0.1, 0.5, 0.9, 0.999999} {
		for d := time.Duration(0); d <= 800*day; d += 7 * time.Hour {
			e := now.Add(d)
			got := NextCheck("example.com", PhaseActive, &Evidence{ExpiresAt: &e}, nil, now, ScheduleConfig{Jitter: 0.3}, constRnd(r))
			if !got.After(now) {
				t.Fatalf("E=now%+v r=%v: next %v not in the future", d, r, got.Sub(now))
			}
			if limit := e.Add(-day); now.Before(limit) && got.After(limit) {
				t.Fatalf("E=now%+v r=%v: next now%+v after E-1d", d, r, got.Sub(now))
			}
		}
	}
}

func TestRetryAfterFailure(t *testing.T) {
	tests := []struct {
		failures int
		rnd      func() float64
		want     time.Duration
	}{
		{0, constRnd(0.5), time.Hour},
		{1, constRnd(0.5), time.Hour},
		{2, constRnd(0.5), 4 * time.Hour},
		{3, constRnd(0.5), day},
		{10, constRnd(0.5), day},
		{-3, constRnd(0.5), time.Hour},
		{1, constRnd(0), 54 * time.Minute},
		{3, constRnd(0), day - day/10},
		{2, nil, 4 * time.Hour},
	}
	for _, tt := range tests {
		if got := RetryAfterFailure(tt.failures, now, tt.rnd).Sub(now); got != tt.want {
			t.Errorf("RetryAfterFailure(%d) = now+%v, want now+%v", tt.failures, got, tt.want)
		}
	}
}

func TestUrgencyOf(t *testing.T) {
	checked := at(-40 * day)
	tests := []struct {
		name string
		d    DueDomain
		want Urgency
	}{
		{"never checked", DueDomain{Phase: PhaseActive}, UrgencyNeverChecked},
		{"never checked (zero time)", DueDomain{Phase: PhaseUnknown, LastChecked: &time.Time{}}, UrgencyNeverChecked},
		{"never checked, expiring", DueDomain{Phase: PhaseGrace, ExpiresAt: at(day)}, UrgencyNeverChecked},
		{"active expiring soon", DueDomain{Phase: PhaseActive, ExpiresAt: at(10 * day), LastChecked: checked}, UrgencyAtRisk},
		{"active expiring at the threshold", DueDomain{Phase: PhaseActive, ExpiresAt: at(ExpiringSoon), LastChecked: checked}, UrgencyAtRisk},
		{"active expiring just after the threshold", DueDomain{Phase: PhaseActive, ExpiresAt: at(ExpiringSoon + time.Microsecond), LastChecked: checked}, UrgencyRoutine},
		{"active expired date", DueDomain{Phase: PhaseActive, ExpiresAt: at(-day), LastChecked: checked}, UrgencyAtRisk},
		{"grace", DueDomain{Phase: PhaseGrace, ExpiresAt: at(360 * day), LastChecked: checked}, UrgencyAtRisk},
		{"released", DueDomain{Phase: PhaseReleased, LastChecked: checked}, UrgencyAtRisk},
		{"unknown", DueDomain{Phase: PhaseUnknown, LastChecked: checked}, UrgencyAtRisk},
		{"active healthy", DueDomain{Phase: PhaseActive, ExpiresAt: at(200 * day), LastChecked: checked}, UrgencyRoutine},
		{"active without expiry", DueDomain{Phase: PhaseActive, LastChecked: checked}, UrgencyRoutine},
	}
	for _, tt := range tests {
		if got := UrgencyOf(tt.d, now); got != tt.want {
			t.Errorf("%s: UrgencyOf = %d, want %d", tt.name, got, tt.want)
		}
	}
	if !(UrgencyNeverChecked < UrgencyAtRisk && UrgencyAtRisk < UrgencyRoutine) {
		t.Fatal("urgency order broken")
	}
}

func TestUrgencyRuleShape(t *testing.T) {
	rule := UrgencyRule()
	if _, ok := rule[len(rule)-1].When.(Always); !ok {
		t.Errorf("the last class must hold always, got %T", rule[len(rule)-1].When)
	}
	for i, c := range rule {
		if c.Name == "" {
			t.Errorf("class %d has no name", i)
		}
		if i > 0 && c.Urgency <= rule[i-1].Urgency {
			t.Errorf("class %d (%s) is not less urgent than the one before", i, c.Name)
		}
	}
}

func TestCompareDue(t *testing.T) {
	checked := at(-40 * day)
	early, late := *at(-3 * day), *at(-day)
	a := DueDomain{Name: "a.com", Phase: PhaseActive, LastChecked: checked, NextCheck: early}
	tests := []struct {
		name string
		x, y DueDomain
		want int
	}{
		{"urgency first", DueDomain{Name: "z.com", Phase: PhaseGrace, LastChecked: checked, NextCheck: late}, a, -1},
		{"then most overdue", DueDomain{Name: "z.com", Phase: PhaseActive, LastChecked: checked, NextCheck: early.Add(-time.Second)}, a, -1},
		{"then name", DueDomain{Name: "b.com", Phase: PhaseActive, LastChecked: checked, NextCheck: early}, a, 1},
		{"equal", a, a, 0},
	}
	for _, tt := range tests {
		if got := CompareDue(tt.x, tt.y, now); got != tt.want {
			t.Errorf("%s: CompareDue = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestScheduleConfig(t *testing.T) {
	c := ScheduleConfig{}.WithDefaults()
	if c.RecheckInterval != 720*time.Hour || c.Jitter != 0.1 {
		t.Fatalf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []ScheduleConfig{{RecheckInterval: time.Minute, Jitter: 0.1}, {RecheckInterval: time.Hour, Jitter: 0.5}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A registry that auto-renews without an "auto renew period" status shows
// a new expiration date right after the old one passed; its registrar may
// still delete or sell the name, so the domain stays on daily checks until
// the grace would have ended (profile), not back on the interval at once.
func TestNextCheckSilentAutoRenew(t *testing.T) {
	renewed := now.Add(365*day - 3*day) // anniversary three days ago
	mid := constRnd(0.5)
	if got := NextCheck("example.ca", PhaseActive, &Evidence{ExpiresAt: &renewed}, nil, now, ScheduleConfig{}, mid); got.Sub(now) != DailyCheckEvery {
		t.Errorf(".ca after a silent renewal: next in %v, want daily", got.Sub(now))
	}
	if got := NextCheck("example.com", PhaseActive, &Evidence{ExpiresAt: &renewed}, nil, now, ScheduleConfig{}, mid); got.Sub(now) != DefaultRecheckInterval {
		t.Errorf(".com (shows its auto-renew status): next in %v, want the interval", got.Sub(now))
	}
	later := now.Add(46 * day)
	if got := NextCheck("example.ca", PhaseActive, &Evidence{ExpiresAt: &renewed}, nil, later, ScheduleConfig{}, mid); got.Sub(later) != DefaultRecheckInterval {
		t.Errorf(".ca after the grace would have ended: next in %v, want the interval", got.Sub(later))
	}
}
