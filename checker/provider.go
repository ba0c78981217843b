package checker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/domainguard/domainguard/internal/dialguard"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/lifecycle"
)

// Provider looks up the registration status of one registrable domain.
//
// A provider answers in one of three ways:
//   - an Observation with a known phase and its evidence;
//   - an Observation with phase unknown and Evidence.Detail saying why (the
//     provider answered, but no decision is possible: no RDAP service for the
//     TLD, a 404 that the canary rule could not confirm, an unparseable body);
//   - an error, for failures worth retrying (*LookupError with Temporary set:
//     timeouts, 5xx, 429) or not (*LookupError without Temporary: the name
//     is invalid or the zone does not exist). An error is never a phase.
type Provider interface {
	// Name identifies the provider in evidence, logs and metrics.
	Name() string
	// Lookup asks about domain. prev is the last known observation (may be
	// nil); providers use it only to compare (e.g. nameserver moves).
	Lookup(ctx context.Context, domain string, prev *lifecycle.Observation) (lifecycle.Observation, error)
}

// LookupError is a failed lookup.
type LookupError struct {
	Provider string
	Domain   string
	// Temporary marks failures worth retrying later.
	Temporary bool
	// RetryAfter is the provider's requested wait (429/503 Retry-After), 0 if none.
	RetryAfter time.Duration
	// StatusCode is the HTTP status, 0 if none.
	StatusCode int
	Err        error
}

func (e *LookupError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	// A provider's error may quote the URL it asked, credentials and all
	// (net/http keeps the user name); this text is logged and published.
	if e.StatusCode != 0 {
		return redact.Text(fmt.Sprintf("%s lookup %s: %s failure (HTTP %d): %v", e.Provider, e.Domain, kind, e.StatusCode, e.Err))
	}
	return redact.Text(fmt.Sprintf("%s lookup %s: %s failure: %v", e.Provider, e.Domain, kind, e.Err))
}

func (e *LookupError) Unwrap() error { return e.Err }

// ErrNoSource is returned (wrapped) by a provider that has no usable
// source of evidence for the domain's TLD: no RDAP service, no commercial
// provider, and no DNS evidence. The worker publishes an unmonitored
// heartbeat (retried weekly, DESIGN.md §8) instead of retrying.
var ErrNoSource = errors.New("no usable evidence source for the TLD")

// ErrLookupRefused is wrapped by a lookup the dial guard refused: the
// provider's server (from the RDAP bootstrap or a redirect) is at a
// loopback, private or link-local address the operator did not name
// (DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS). Retrying at once cannot help, and it
// is no evidence about the domain: the worker publishes a failed heartbeat.
var ErrLookupRefused = dialguard.ErrRefused

// IsPermanent reports whether err is a lookup failure that retrying cannot
// fix. Unclassified errors count as temporary: when in doubt, retry.
func IsPermanent(err error) bool {
	var le *LookupError
	return errors.As(err, &le) && !le.Temporary
}

// RetryAfter returns the wait a provider asked for, if any.
func RetryAfter(err error) time.Duration {
	var le *LookupError
	if errors.As(err, &le) {
		return le.RetryAfter
	}
	return 0
}
