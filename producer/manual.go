package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

// ErrUnknownDomain is returned by EnqueueManual for a domain domainguard
// does not watch.
var ErrUnknownDomain = errors.New("domain is not watched")

// EnqueueManual enqueues a check of a watched domain now (reason manual),
// carrying its previous observation like a sweep does, and leases it the
// same way. It decides nothing: the checker looks the domain up and the
// enforcer applies the result. pending reports that a check of the domain
// was already queued (which is as good).
func (p *Producer) EnqueueManual(ctx context.Context, domain string) (pending bool, err error) {
	var d dueDomain
	err = p.cfg.Pool.QueryRow(ctx, `SELECT name, phase, evidence, `+freeCheckSQL+` FROM domains WHERE name = $1`, domain).
		Scan(&d.name, &d.phase, &d.evidence, &d.free)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("check %s: %w", domain, ErrUnknownDomain)
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", domain, err)
	}
	now := p.cfg.Clock.Now()
	msg, err := p.checkMsg(d.name, schemas.CheckManual, p.previous(d), now)
	if err != nil {
		return false, err
	}
	if _, err := p.cfg.JS.PublishMsg(ctx, msg); err != nil {
		if !broker.IsAlreadyPending(err) {
			return false, fmt.Errorf("check %s: publish: %w", d.name, err)
		}
		pending = true
	}
	// The lease only applies to a due domain (leaseSQL), so a manual check
	// of a domain scheduled later leaves its schedule alone; the result
	// reschedules it anyway.
	if _, err := p.cfg.Pool.Exec(ctx, leaseSQL, []string{d.name}, []time.Time{p.leaseTime(now)}, now,
		now.UTC().Truncate(time.Hour), lookupCost(!pending, d.free)); err != nil {
		p.log.Warn("manual check: lease failed; the check is queued", "domain", d.name, "error", err)
	}
	return pending, nil
}
