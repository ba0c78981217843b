package console

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginLimiter limits login attempts per key (client address, user name):
// a burst of 5, then one every 12 seconds.
type loginLimiter struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	seen    map[string]time.Time
}

const (
	loginBurst    = 5
	loginInterval = 12 * time.Second
	maxBuckets    = 10000
)

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{buckets: map[string]*rate.Limiter{}, seen: map[string]time.Time{}}
}

// allow takes one attempt from every key's bucket; false if any is empty.
func (l *loginLimiter) allow(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > maxBuckets {
		// Forget keys idle long enough to have refilled.
		for k, t := range l.seen {
			if now.Sub(t) > loginBurst*loginInterval {
				delete(l.buckets, k)
				delete(l.seen, k)
			}
		}
	}
	ok := true
	for _, k := range keys {
		b := l.buckets[k]
		if b == nil {
			b = rate.NewLimiter(rate.Every(loginInterval), loginBurst)
			l.buckets[k] = b
		}
		l.seen[k] = now
		if !b.AllowN(now, 1) {
			ok = false
		}
	}
	return ok
}
