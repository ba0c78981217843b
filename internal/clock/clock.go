// Package clock lets code that schedules or decides by time take the time
// from outside, so tests and the simulator drive it with simulated time.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// System is the wall clock, in UTC.
type System struct{}

// Now returns the current time in UTC.
func (System) Now() time.Time { return time.Now().UTC() }

// Stub is a settable clock for tests. The zero value reads the zero time.
type Stub struct {
	mu  sync.Mutex
	now time.Time
}

// NewStub returns a Stub set to t.
func NewStub(t time.Time) *Stub { return &Stub{now: t} }

// Now returns the stubbed time.
func (s *Stub) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Set moves the clock to t.
func (s *Stub) Set(t time.Time) {
	s.mu.Lock()
	s.now = t
	s.mu.Unlock()
}

// Advance moves the clock forward by d and returns the new time.
func (s *Stub) Advance(d time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
	return s.now
}
