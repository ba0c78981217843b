package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/domainname"
)

// rekeyPredicate selects the rows whose key may predate the normalised
// domain part (domainname.StoredEmail): a non-ASCII byte or an upper-case
// letter after the last "@", or a trailing dot. It is the predicate of the
// partial indexes of migration 0018, written the same so that the planner
// uses them: the check at every start reads an empty index.
const rekeyPredicate = `(email ~ '([^[:ascii:]]|[A-Z])[^@]*$' OR email LIKE '%.')`

// rekeyPage is how many candidate rows one query of the pass reads.
const rekeyPage = 500

// RekeyResult counts what RekeyAddresses changed.
type RekeyResult struct {
	Tombstones int // removal tombstones moved to the current key (merged with one there)
	Addresses  int // addresses moved to the current key
	Merged     int // of which merged with a row already under that key
	Removed    int // addresses deleted: a removal in another form was newer
	// Kept are rows whose domain part does not normalise (intake rejects
	// such addresses today): they keep their key.
	Kept int
	// Failed are rows that could not be rekeyed even on a second try; the
	// next pass (hourly, and at start) tries them again.
	Failed int
}

func (r *RekeyResult) add(o RekeyResult) {
	r.Tombstones += o.Tombstones
	r.Addresses += o.Addresses
	r.Merged += o.Merged
	r.Removed += o.Removed
	r.Kept += o.Kept
	r.Failed += o.Failed
}

// RekeyAddresses brings addresses and removal tombstones stored under an
// older key (domain part only lower-cased: "a@bücher.de", "a@example.com.")
// to the current one (domainname.StoredEmail: "a@xn--bcher-kva.de",
// "a@example.com"), one address per transaction under intake's address
// lock, so it may run beside intake and beside another producer's pass.
//
// Where the current key already holds a row of the same user, the two
// become one (mergeAddresses). Two tombstones keep the later removal. A
// tombstone (now under the same key) newer than the address's last event
// removes it, as the removal would have had it been keyed alike.
//
// A row that fails (a concurrent import inserted the current key between
// the read and the rename, a deadlock with a sweep's lease) is tried once
// more at once, where it becomes a merge; one that fails again is counted
// in Failed and the pass goes on; the error then names the last failure.
func (p *Producer) RekeyAddresses(ctx context.Context) (RekeyResult, error) {
	var res RekeyResult
	err := p.rekeyTable(ctx, "email_removals", &res, p.rekeyTombstone)
	if ctx.Err() == nil {
		err = errors.Join(err, p.rekeyTable(ctx, "emails", &res, p.rekeyAddress))
	}
	return res, err
}

// rekeyTable runs rekey on every candidate row of table, in key order.
func (p *Producer) rekeyTable(ctx context.Context, table string, res *RekeyResult,
	rekey func(ctx context.Context, userID, old, key string, res *RekeyResult) error) error {
	var afterUser, afterEmail string
	var lastErr error
	for {
		rows, err := p.cfg.Pool.Query(ctx, `SELECT user_id, email FROM `+table+` WHERE `+rekeyPredicate+`
			AND (user_id, email) > ($1, $2) ORDER BY user_id, email LIMIT `+fmt.Sprint(rekeyPage), afterUser, afterEmail)
		if err != nil {
			return fmt.Errorf("rekey %s: %w", table, err)
		}
		type row struct{ user, email string }
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.user, &x.email)
		})
		if err != nil {
			return fmt.Errorf("rekey %s: %w", table, err)
		}
		for _, r := range page {
			key := domainname.StoredEmail(r.email)
			if key == r.email {
				res.Kept++
				continue
			}
			// Counted only once the row's transaction committed.
			var row RekeyResult
			err := rekey(ctx, r.user, r.email, key, &row)
			if err != nil && ctx.Err() == nil {
				row = RekeyResult{}
				err = rekey(ctx, r.user, r.email, key, &row)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("rekey %s: %w", table, context.Cause(ctx))
			}
			if err != nil {
				res.Failed++
				lastErr = fmt.Errorf("rekey %s of user %s: %w", table, r.user, err)
				continue
			}
			res.add(row)
		}
		if len(page) < rekeyPage {
			return lastErr
		}
		afterUser, afterEmail = page[len(page)-1].user, page[len(page)-1].email
	}
}

// lockRekey takes intake's address lock on the current key, then on the
// old one (always in this order: no two passes wait on each other).
func lockRekey(ctx context.Context, tx pgx.Tx, userID, old, key string) error {
	if err := lockAddress(ctx, tx, Address{UserID: userID, Email: key}); err != nil {
		return err
	}
	return lockAddress(ctx, tx, Address{UserID: userID, Email: old})
}

// rekeyTombstone moves one tombstone to key, keeping the later removal
// where key has one already.
func (p *Producer) rekeyTombstone(ctx context.Context, userID, old, key string, res *RekeyResult) error {
	return pgx.BeginFunc(ctx, p.cfg.Pool, func(tx pgx.Tx) error {
		if err := lockRekey(ctx, tx, userID, old, key); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			WITH old AS (DELETE FROM email_removals WHERE user_id = $1 AND email = $2 RETURNING removed_at, recorded_at)
			INSERT INTO email_removals AS r (user_id, email, removed_at, recorded_at)
			SELECT $1, $3, removed_at, recorded_at FROM old
			ON CONFLICT (user_id, email) DO UPDATE
			   SET removed_at = greatest(r.removed_at, excluded.removed_at),
			       recorded_at = greatest(r.recorded_at, excluded.recorded_at)`, userID, old, key)
		if err != nil {
			return fmt.Errorf("move tombstone: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // gone meanwhile
		}
		res.Tombstones++
		return applyTombstone(ctx, tx, userID, key, res)
	})
}

// applyTombstone applies the tombstone under key, if there is one, to the
// address under key by intake's removal rule (deleteRemoved): a removal
// that missed the address because it came in another form.
func applyTombstone(ctx context.Context, tx pgx.Tx, userID, key string, res *RekeyResult) error {
	var removedAt time.Time
	err := tx.QueryRow(ctx, `SELECT removed_at FROM email_removals WHERE user_id = $1 AND email = $2`,
		userID, key).Scan(&removedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read removal: %w", err)
	}
	n, err := deleteRemoved(ctx, tx, userID, key, removedAt)
	if err != nil {
		return fmt.Errorf("apply removal: %w", err)
	}
	res.Removed += int(n)
	return nil
}

// storedAddress is the state of one emails row that a merge decides on.
type storedAddress struct {
	Domain         string
	Verified       bool
	VerifiedAt     time.Time
	EventAt        *time.Time
	AsSent         *string
	UnverifiedAt   *time.Time
	UnverifyReason *string
	UnverifyPhase  *string
}

const storedAddressColumns = `domain, verified, verified_at, event_at, email_as_sent, unverified_at, unverify_reason, unverify_phase`

func (a *storedAddress) fields() []any {
	return []any{&a.Domain, &a.Verified, &a.VerifiedAt, &a.EventAt, &a.AsSent, &a.UnverifiedAt, &a.UnverifyReason, &a.UnverifyPhase}
}

// mergeAddresses folds the two rows of one address (current: under the
// current key; old: under an older key) into the row intake would have
// made had every event of both come to one key (storeVerified): the
// latest verification (verified_at) counts, and an unverification by
// domainguard stands unless that verification is later than it — a merge
// neither brings back an address that lapsed nor locks out one the host
// verified since. Domain, the form as sent and event_at come from the row
// of the newer host event (current on a tie or when neither has one).
func mergeAddresses(current, old storedAddress) storedAddress {
	out, other := current, old
	if old.EventAt != nil && (current.EventAt == nil || old.EventAt.After(*current.EventAt)) {
		out, other = old, current
	}
	if other.VerifiedAt.After(out.VerifiedAt) {
		out.VerifiedAt = other.VerifiedAt
	}
	// The latest unverification of either row that is still unverified.
	var lapse *storedAddress
	for _, r := range []*storedAddress{&out, &other} {
		if !r.Verified && r.UnverifiedAt != nil && (lapse == nil || r.UnverifiedAt.After(*lapse.UnverifiedAt)) {
			lapse = r
		}
	}
	switch {
	case lapse == nil:
		// no unverification by domainguard on either: out as it is
	case out.VerifiedAt.After(*lapse.UnverifiedAt):
		// verified again since: intake would have re-verified it
		out.Verified = true
		out.UnverifiedAt, out.UnverifyReason, out.UnverifyPhase = nil, nil, nil
	default:
		out.Verified = false
		out.UnverifiedAt, out.UnverifyReason, out.UnverifyPhase = lapse.UnverifiedAt, lapse.UnverifyReason, lapse.UnverifyPhase
	}
	return out
}

// rekeyAddress moves one address to key (merging it with a row there),
// then applies a tombstone under key that is newer than its last event.
func (p *Producer) rekeyAddress(ctx context.Context, userID, old, key string, res *RekeyResult) error {
	return pgx.BeginFunc(ctx, p.cfg.Pool, func(tx pgx.Tx) error {
		if err := lockRekey(ctx, tx, userID, old, key); err != nil {
			return err
		}
		// The enforcer reads a domain's addresses and then unverifies them
		// by key, holding the domain's row: renaming a key in between would
		// make it miss the address. So wait for it, and keep it waiting,
		// on the rows of the names the address is watched by (in name
		// order, as it locks them; domains before emails, as it does).
		if _, err := tx.Exec(ctx, `SELECT 1 FROM domains d
			WHERE d.name IN (SELECT unnest(ARRAY[e.domain, e.watch_name]) FROM emails e WHERE e.user_id = $1 AND e.email IN ($2, $3))
			ORDER BY d.name FOR SHARE OF d`, userID, old, key); err != nil {
			return fmt.Errorf("lock the address's domains: %w", err)
		}
		read := func(email string) (storedAddress, bool, error) {
			var a storedAddress
			err := tx.QueryRow(ctx, `SELECT `+storedAddressColumns+` FROM emails WHERE user_id = $1 AND email = $2 FOR UPDATE`,
				userID, email).Scan(a.fields()...)
			if errors.Is(err, pgx.ErrNoRows) {
				return a, false, nil
			}
			return a, err == nil, err
		}
		oldRow, found, err := read(old)
		if err != nil || !found {
			return err // gone meanwhile (removed, or another pass moved it)
		}
		current, clash, err := read(key)
		if err != nil {
			return err
		}
		// watch_name as intake would store it for key: a backfill of watch
		// names racing with this rename (another replica's start) may have
		// missed the row.
		watch := nullable(domainname.WatchNameFromEmail(key))
		if !clash {
			if _, err := tx.Exec(ctx, `UPDATE emails SET email = $3, watch_name = $4, updated_at = now() WHERE user_id = $1 AND email = $2`,
				userID, old, key, watch); err != nil {
				return fmt.Errorf("move address: %w", err)
			}
		} else {
			m := mergeAddresses(current, oldRow)
			if _, err := tx.Exec(ctx, `UPDATE emails SET domain = $3, verified = $4, verified_at = $5, event_at = $6,
				email_as_sent = $7, watch_name = $8, unverified_at = $9, unverify_reason = $10, unverify_phase = $11, updated_at = now()
				WHERE user_id = $1 AND email = $2`, userID, key, m.Domain, m.Verified, m.VerifiedAt, m.EventAt,
				m.AsSent, watch, m.UnverifiedAt, m.UnverifyReason, m.UnverifyPhase); err != nil {
				return fmt.Errorf("merge address: %w", err)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM emails WHERE user_id = $1 AND email = $2`, userID, old); err != nil {
				return fmt.Errorf("delete merged address: %w", err)
			}
			res.Merged++
		}
		res.Addresses++
		return applyTombstone(ctx, tx, userID, key, res)
	})
}

// runRekey runs RekeyAddresses for the sweeper: at its start and hourly
// after (rows a replica of an older build still writes, rows a pass could
// not do). A failure is logged and the next pass tries again (the rows stay
// in the index). Rows that keep their key are reported on the first pass.
func (p *Producer) runRekey(ctx context.Context, first bool) {
	pass, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := p.RekeyAddresses(pass)
	switch {
	case err != nil && ctx.Err() == nil:
		p.log.Warn("addresses under an older key not all rekeyed; the next pass (within the hour) continues", "error", err,
			"addresses", res.Addresses, "tombstones", res.Tombstones, "failed", res.Failed)
	case res.Addresses > 0 || res.Tombstones > 0:
		p.log.Info("addresses rekeyed to the normalised domain", "addresses", res.Addresses, "merged", res.Merged,
			"removed", res.Removed, "tombstones", res.Tombstones, "kept", res.Kept)
	}
	if first && res.Kept > 0 {
		p.log.Warn("stored addresses whose domain does not normalise keep their key", "rows", res.Kept)
	}
}
