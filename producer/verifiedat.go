package producer

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxClockSkew is how far in the future a host's verified_at may lie. A
// verified_at far ahead would make every later observation look stale to
// the enforcer, switching protection off for the address, so such input is
// rejected.
const MaxClockSkew = time.Hour

// verifiedAtLayouts are the accepted textual forms, tried in order. Forms
// without a zone are UTC.
var verifiedAtLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02 15:04",
	"2006-01-02",
}

// ParseVerifiedAt reads a verification time leniently: RFC 3339 (also with a
// space instead of "T", or PostgreSQL's "+00" zone), a date (midnight UTC),
// or Unix seconds (a number above 10^11 is taken as Unix milliseconds).
func ParseVerifiedAt(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("verified_at is empty")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > 1e11 || n < -1e11 {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range verifiedAtLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return time.Time{}, fmt.Errorf("verified_at %q is not RFC 3339, a date or Unix seconds", s)
}

// CheckVerifiedAt rejects times out of the plausible range: before 1985, or
// more than MaxClockSkew after now (a zero now skips that check).
func CheckVerifiedAt(t, now time.Time) error {
	if t.Year() < 1985 {
		return fmt.Errorf("verified_at %s is before 1985", t.Format(time.RFC3339))
	}
	if !now.IsZero() && t.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("verified_at %s is in the future (now %s)", t.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}
