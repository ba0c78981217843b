package lifecycle

import (
	"strings"
	"testing"
	"time"
)

// TestCheckObservedAt: up to MaxClockSkew ahead (inclusive) passes; beyond
// it the error names the observed_at and how far ahead it is.
func TestCheckObservedAt(t *testing.T) {
	tests := []struct {
		ahead   time.Duration
		wantErr string // "" for no error
	}{
		{-24 * time.Hour, ""},
		{0, ""},
		{MaxClockSkew - time.Nanosecond, ""},
		{MaxClockSkew, ""},
		{MaxClockSkew + time.Nanosecond, "observed_at 2026-06-01T12:05:00Z is 5m0s in the future"},
		{MaxClockSkew + time.Second, "observed_at 2026-06-01T12:05:01Z is 5m1s in the future (more than the 5m0s clock skew allowed)"},
		{30 * 24 * time.Hour, "observed_at 2026-07-01T12:00:00Z is 720h0m0s in the future"},
	}
	for _, tc := range tests {
		err := CheckObservedAt(now.Add(tc.ahead), now)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s ahead: %v, want no error", tc.ahead, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s ahead: %v, want an error containing %q", tc.ahead, err, tc.wantErr)
		}
	}
}
