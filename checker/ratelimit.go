package checker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateKeyer is implemented by providers whose lookups go to different
// hosts (RDAP: one server per registry): lookups are rate limited per key
// instead of per provider.
type RateKeyer interface {
	RateKey(domain string) string
}

// RateExempter is implemented by providers some of whose lookups do not go
// to a rate-limited registry at all (auto: TLDs the DNS alone covers,
// whose client limits each DNS server itself): those lookups skip the
// per-key limiter.
type RateExempter interface {
	RateExempt(domain string) bool
}

// rateExempt reports whether a lookup of domain through p skips the limiter.
func rateExempt(p Provider, domain string) bool {
	e, ok := p.(RateExempter)
	return ok && e.RateExempt(domain)
}

// rateKey returns the limiter key for a lookup of domain through p.
func rateKey(p Provider, domain string) string {
	if k, ok := p.(RateKeyer); ok {
		if key := k.RateKey(domain); key != "" {
			return key
		}
	}
	return p.Name()
}

// pausedError is returned instead of waiting when lookups on a rate key
// are paused (a provider's Retry-After) for longer than a worker should
// wait in place: the caller hands the check back with Remaining as its
// redelivery delay.
type pausedError struct {
	Key       string
	Remaining time.Duration
}

func (e *pausedError) Error() string {
	return fmt.Sprintf("lookups on %s paused for another %s (provider Retry-After)", e.Key, e.Remaining.Round(time.Second))
}

// rateLimiters holds one token bucket per rate key, plus a pause per key
// set from a provider's Retry-After. Safe for concurrent use.
type rateLimiters struct {
	limit rate.Limit
	burst int
	// maxWaitInPlace is the longest pause wait blocks for; a longer one
	// returns a *pausedError at once.
	maxWaitInPlace time.Duration
	// onPause, if set, is called with the key and the end of a new pause.
	onPause func(key string, until time.Time)

	mu   sync.Mutex
	keys map[string]*keyLimiter
}

type keyLimiter struct {
	bucket *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time
}

func newRateLimiters(perSecond float64, burst int, maxWaitInPlace time.Duration, onPause func(string, time.Time)) *rateLimiters {
	return &rateLimiters{limit: rate.Limit(perSecond), burst: burst, maxWaitInPlace: maxWaitInPlace, onPause: onPause,
		keys: make(map[string]*keyLimiter)}
}

func (r *rateLimiters) get(key string) *keyLimiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[key]
	if !ok {
		k = &keyLimiter{bucket: rate.NewLimiter(r.limit, r.burst)}
		r.keys[key] = k
	}
	return k
}

// wait blocks until a lookup on key may start: after any Retry-After pause
// and with a token from the bucket. It returns how long it waited. A pause
// longer than maxWaitInPlace is not waited for: wait returns a
// *pausedError at once.
func (r *rateLimiters) wait(ctx context.Context, key string) (time.Duration, error) {
	start := time.Now()
	k := r.get(key)
	for {
		k.mu.Lock()
		until := k.pausedUntil
		k.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			break
		}
		if d > r.maxWaitInPlace {
			return time.Since(start), &pausedError{Key: key, Remaining: d}
		}
		if err := sleep(ctx, d); err != nil {
			return time.Since(start), err
		}
	}
	err := k.bucket.Wait(ctx)
	return time.Since(start), err
}

// pause stops lookups on key for d (a provider's Retry-After), at most
// MaxRetryAfter.
func (r *rateLimiters) pause(key string, d time.Duration) {
	if d <= 0 {
		return
	}
	k := r.get(key)
	until := time.Now().Add(min(d, MaxRetryAfter))
	k.mu.Lock()
	extended := until.After(k.pausedUntil)
	if extended {
		k.pausedUntil = until
	}
	k.mu.Unlock()
	if extended && r.onPause != nil {
		r.onPause(key, until)
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
