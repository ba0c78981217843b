package checker

import (
	"context"
	"fmt"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// CheckOnce looks up the registrable domain of domain (or the name itself
// when it is held under a private suffix: domainname.CheckName) once
// through p, for the `domainguard check` command: no retries, no rate
// limit, nothing published. prev is the domain's previous observation (nil: none known),
// classified against exactly as the pipeline's checker does. The
// observation's Domain is the registrable domain and its ObservedAt is now
// when the provider left it unset.
func CheckOnce(ctx context.Context, p Provider, domain string, prev *lifecycle.Observation, now time.Time) (lifecycle.Observation, error) {
	name, err := checkName(p, domain)
	if err != nil {
		return lifecycle.Observation{}, fmt.Errorf("check %q: %w", domain, err)
	}
	obs, err := p.Lookup(ctx, name, prev)
	if err != nil {
		return lifecycle.Observation{}, fmt.Errorf("check %s: %w", name, err)
	}
	fillObservation(&obs, name, p.Name(), now)
	return obs, nil
}

// fillObservation sets what a provider may have left empty and drops
// control characters from the provider's text (see lifecycle.Evidence.Clean).
func fillObservation(obs *lifecycle.Observation, domain, provider string, now time.Time) {
	obs.Evidence = obs.Evidence.Clean().Capped()
	if obs.Domain == "" {
		obs.Domain = domain
	}
	if obs.Phase == "" {
		obs.Phase = lifecycle.PhaseUnknown
	}
	if obs.Evidence.Provider == "" {
		obs.Evidence.Provider = provider
	}
	if obs.Evidence.ObservedAt.IsZero() {
		obs.Evidence.ObservedAt = now
	}
}
