package checker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/domainguard/domainguard/internal/dialguard"
	"github.com/domainguard/domainguard/internal/domainname"
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

// PrivateNameChecker is implemented by providers that can check a name held
// under a private PSL suffix (acme.us.com, foo.github.io): through the DNS
// alone, since no registry holds it (checker/auto, checker/dnsevidence).
// Other providers are never asked about such names: they would ask a
// registry about a name it does not hold.
type PrivateNameChecker interface {
	ChecksPrivateNames() bool
}

// checkName returns the name a check of domain looks up through p: its
// registrable domain, or the name itself when it is held under a private
// suffix (domainname.CheckName). For such a name p cannot check, the error
// wraps ErrNoSource (the name is unmonitored); invalid names wrap
// domainname.ErrInvalid.
func checkName(p Provider, domain string) (string, error) {
	name, err := domainname.CheckName(domain)
	if err != nil {
		return "", err
	}
	if domainname.IsWatchName(name) {
		if pc, ok := p.(PrivateNameChecker); !ok || !pc.ChecksPrivateNames() {
			return name, fmt.Errorf("%w: %s lies under the private suffix %s, which no registry holds; provider %s cannot check it (DNS evidence with provider auto can)",
				ErrNoSource, name, domainname.PrivateSuffix(name), p.Name())
		}
	}
	return name, nil
}
