package checker

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds a provider's requested wait: a registry asking for a
// day (or a year) is asked again after 6 hours. While a server is paused,
// checks for its domains go back to the queue with the remaining pause as
// their redelivery delay; they never hold a worker.
const MaxRetryAfter = 6 * time.Hour

// ParseRetryAfter reads an HTTP Retry-After header, for providers that
// answer 429 or 503: delay seconds or an HTTP date (relative to now). It
// returns 0 when absent or unreadable, and caps the wait at MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}
