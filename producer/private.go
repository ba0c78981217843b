package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/domainname"
)

// PrivateNames brings the watching of names under private PSL suffixes
// (DESIGN.md §2 "Private suffixes") up to date, for addresses stored
// before emails.watch_name existed and for DNS evidence turned on later:
// it fills watch_name where it is missing, and with WatchPrivateNames adds
// the missing private_suffix domains rows of verified addresses (due now).
// It returns how many addresses got their watch name and how many names
// were added. Idempotent; the sweeper runs it once at start.
func (p *Producer) PrivateNames(ctx context.Context) (backfilled, added int64, err error) {
	// Only hosts with three labels or more can lie under a private suffix.
	rows, err := p.cfg.Pool.Query(ctx, `
		SELECT DISTINCT substring(email from '@([^@]*)$') FROM emails
		 WHERE watch_name IS NULL AND email LIKE '%@%.%.%'`)
	if err != nil {
		return 0, 0, fmt.Errorf("private names: read hosts: %w", err)
	}
	var hosts, names []string
	var host string
	if _, err := pgx.ForEachRow(rows, []any{&host}, func() error {
		if w := domainname.WatchName(host); w != "" {
			hosts, names = append(hosts, host), append(names, w)
		}
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("private names: read hosts: %w", err)
	}
	if len(hosts) > 0 {
		tag, err := p.cfg.Pool.Exec(ctx, `
			UPDATE emails e SET watch_name = t.name
			  FROM unnest($1::text[], $2::text[]) AS t(host, name)
			 WHERE e.watch_name IS NULL AND substring(e.email from '@([^@]*)$') = t.host`, hosts, names)
		if err != nil {
			return 0, 0, fmt.Errorf("private names: fill watch_name: %w", err)
		}
		backfilled = tag.RowsAffected()
	}
	if !p.cfg.WatchPrivateNames {
		return backfilled, 0, nil
	}
	tag, err := p.cfg.Pool.Exec(ctx, `
		INSERT INTO domains (name, next_check_at, private_suffix)
		SELECT DISTINCT watch_name, $1::timestamptz, true FROM emails WHERE watch_name IS NOT NULL AND verified
		ON CONFLICT (name) DO NOTHING`, p.cfg.Clock.Now())
	if err != nil {
		return backfilled, 0, fmt.Errorf("private names: add domains: %w", err)
	}
	return backfilled, tag.RowsAffected(), nil
}

// startPrivateNames runs PrivateNames at the sweeper's start; a failure is
// logged and costs only the backfill (new addresses get their names at
// intake).
func (p *Producer) startPrivateNames(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	backfilled, added, err := p.PrivateNames(ctx)
	switch {
	case err != nil:
		p.log.Warn("private-suffix names not brought up to date", "error", err)
	case backfilled > 0 || added > 0:
		p.log.Info("private-suffix names brought up to date", "addresses_backfilled", backfilled, "names_added", added,
			"watched", p.cfg.WatchPrivateNames)
	}
}
