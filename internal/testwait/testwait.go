// Package testwait is the one polling wait of the tests: For polls a
// condition until it holds or a timeout passes, and fails the test then.
package testwait

import (
	"testing"
	"time"
)

// Poll is how often For evaluates its condition.
const Poll = 20 * time.Millisecond

// For polls cond every Poll until it holds; after timeout it fails the
// test, naming what it waited for.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(Poll)
	}
}
