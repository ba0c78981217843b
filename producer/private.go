package producer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/domainname"
)

// watchNameBackfill is the backfills row (migration 0017) of the
// watch_name backfill: the WatchNameRevision it last completed against.
const watchNameBackfill = "watch_name"

// PrivateNames brings the watching of names under private PSL suffixes
// (DESIGN.md §2 "Private suffixes") up to date. It computes
// emails.watch_name again for every stored address when the Public Suffix
// List in use is not the one the last completed backfill used
// (backfillWatchNames: addresses stored before watch_name existed, or
// under an older list), and with WatchPrivateNames adds the missing
// private_suffix domains rows of verified addresses (due now), which DNS
// evidence turned on later needs at whatever start it comes. It returns
// how many addresses got a new watch name and how many names were added;
// a failure of one step does not skip the other. Idempotent; the sweeper
// runs it beside its first sweep.
func (p *Producer) PrivateNames(ctx context.Context) (changed, added int64, err error) {
	changed, err = p.backfillWatchNames(ctx)
	if !p.cfg.WatchPrivateNames {
		return changed, 0, err
	}
	added, addErr := p.addPrivateNames(ctx)
	return changed, added, errors.Join(err, addErr)
}

// backfillWatchNames computes watch_name again for every address, unless
// the marker says that was completed against p.watchRev: intake and import
// set the name of every address they store, so only another list (a new
// build) can make a stored one stale, and a restart with the same list
// scans nothing. The marker row stays locked for the whole transaction,
// so replicas starting together scan once, and it is updated in the
// transaction that writes the names, so it never claims a backfill that
// did not commit. An unknown revision ("") is never recorded: the backfill
// then runs at every start.
//
// The marker never goes back to an older list: a replica whose revision
// is older than the recorded one (an old build restarting during a rolling
// upgrade, or a rollback) leaves the names and the marker alone and warns,
// since computing them with its list would take the names under suffixes
// the newer list added off every address until a newer replica restarted.
// A deliberate rollback clears the marker (DESIGN.md §2 "Private
// suffixes"). Revisions that cannot be ordered (the marker "" before the
// first backfill, one written in another format) run the backfill, as any
// other revision does: skipping it would keep names of an unknown list.
func (p *Producer) backfillWatchNames(ctx context.Context) (changed int64, err error) {
	err = pgx.BeginFunc(ctx, p.cfg.Pool, func(tx pgx.Tx) error {
		var done string
		if err := tx.QueryRow(ctx, `SELECT revision FROM backfills WHERE name = $1 FOR UPDATE`,
			watchNameBackfill).Scan(&done); err != nil {
			return fmt.Errorf("read marker: %w", err)
		}
		if p.watchRev != "" && done == p.watchRev {
			return nil
		}
		if order, ok := domainname.CompareWatchNameRevisions(p.watchRev, done); ok && order < 0 {
			p.log.Warn("watch-name backfill skipped: the recorded Public Suffix List is newer than this build's "+
				"(mid-upgrade, or a rollback: clear the marker to keep this list, DESIGN.md §2)",
				"recorded", done, "in_use", p.watchRev)
			return nil
		}
		if changed, err = recomputeWatchNames(ctx, tx); err != nil {
			return err
		}
		if p.watchRev == "" {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE backfills SET revision = $2, completed_at = $3 WHERE name = $1`,
			watchNameBackfill, p.watchRev, p.cfg.Clock.Now()); err != nil {
			return fmt.Errorf("record marker: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("private names: backfill watch_name: %w", err)
	}
	return changed, nil
}

// recomputeWatchNames sets watch_name to domainname.WatchName of each
// stored address's host where it differs (filled, moved to another name,
// or cleared when a list no longer holds the suffix) and returns how many
// addresses changed.
func recomputeWatchNames(ctx context.Context, tx pgx.Tx) (int64, error) {
	// Only hosts with three labels or more can lie under a private suffix
	// (which has two labels at least), and a stored name has three too.
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT substring(email from '@([^@]*)$'), COALESCE(watch_name, '') FROM emails
		 WHERE email LIKE '%@%.%.%'`)
	if err != nil {
		return 0, fmt.Errorf("read hosts: %w", err)
	}
	want := map[string]string{} // host → its watch name, for hosts stored with another
	var host, stored string
	if _, err := pgx.ForEachRow(rows, []any{&host, &stored}, func() error {
		if w := domainname.WatchName(host); w != stored {
			want[host] = w
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read hosts: %w", err)
	}
	if len(want) == 0 {
		return 0, nil
	}
	hosts, names := make([]string, 0, len(want)), make([]string, 0, len(want))
	for h, w := range want {
		hosts, names = append(hosts, h), append(names, w)
	}
	tag, err := tx.Exec(ctx, `
		UPDATE emails e SET watch_name = NULLIF(t.name, '')
		  FROM unnest($1::text[], $2::text[]) AS t(host, name)
		 WHERE substring(e.email from '@([^@]*)$') = t.host AND e.watch_name IS DISTINCT FROM NULLIF(t.name, '')`,
		hosts, names)
	if err != nil {
		return 0, fmt.Errorf("write watch_name: %w", err)
	}
	return tag.RowsAffected(), nil
}

// addPrivateNames adds the missing domains rows of the private-suffix
// names of verified addresses (WatchPrivateNames). Cheap (the partial
// index emails_watch_name_idx), so it runs at every start: DNS evidence
// may have been turned on since the names were stored.
func (p *Producer) addPrivateNames(ctx context.Context) (int64, error) {
	tag, err := p.cfg.Pool.Exec(ctx, `
		INSERT INTO domains (name, next_check_at, private_suffix)
		SELECT DISTINCT watch_name, $1::timestamptz, true FROM emails WHERE watch_name IS NOT NULL AND verified
		ON CONFLICT (name) DO NOTHING`, p.cfg.Clock.Now())
	if err != nil {
		return 0, fmt.Errorf("private names: add domains: %w", err)
	}
	return tag.RowsAffected(), nil
}

// startPrivateNames runs PrivateNames beside the sweeper's first sweep (the
// sweep does not need it: a name it adds is due at once and taken by the
// next sweep); a failure is logged and costs only the backfill, retried at
// the next start (new addresses get their names at intake).
func (p *Producer) startPrivateNames(ctx context.Context) {
	changed, added, err := p.PrivateNames(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		p.log.Warn("private-suffix names not brought up to date", "error", err)
	case err == nil && (changed > 0 || added > 0):
		p.log.Info("private-suffix names brought up to date", "addresses_changed", changed, "names_added", added,
			"watched", p.cfg.WatchPrivateNames)
	}
}
