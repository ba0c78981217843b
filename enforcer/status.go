package enforcer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/internal/termtext"
	"github.com/domainguard/domainguard/lifecycle"
)

// StatusReport is what `domainguard status EMAIL|DOMAIN` shows: the current
// state, the evidence behind it and the audit history.
type StatusReport struct {
	Query string `json:"query"`
	// Kind is "email" or "domain".
	Kind         string              `json:"kind"`
	Domain       *DomainStatus       `json:"domain,omitempty"`
	Emails       []EmailStatus       `json:"emails"`
	Observations []ObservationRecord `json:"observations"`
	Holds        []Hold              `json:"holds"`
	Audit        []AuditRecord       `json:"audit"`
}

// DomainStatus is a domains row with address counts.
type DomainStatus struct {
	Name          string              `json:"name"`
	Known         bool                `json:"known"` // a domains row exists
	Phase         lifecycle.Phase     `json:"phase"`
	Evidence      *lifecycle.Evidence `json:"evidence,omitempty"`
	ObservedAt    *time.Time          `json:"observed_at,omitempty"`
	PhaseSince    *time.Time          `json:"phase_since,omitempty"`
	LastCheckedAt *time.Time          `json:"last_checked_at,omitempty"`
	NextCheckAt   *time.Time          `json:"next_check_at,omitempty"`
	CheckFailures int                 `json:"check_failures"`
	// LastError is the last failed lookup's reason and LastErrorAt when
	// it happened (kept after a later success).
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// UnmonitoredSince is set while no source of evidence covers the TLD.
	UnmonitoredSince *time.Time `json:"unmonitored_since,omitempty"`
	Protected        bool       `json:"protected"`
	VerifiedCount    int        `json:"verified_count"`
	UnverifiedCount  int        `json:"unverified_count"`
}

// EmailStatus is one emails row.
type EmailStatus struct {
	UserID string `json:"user_id"`
	// Email is the stored key; EmailAsSent the address exactly as the host
	// sent it ("" for addresses stored before domainguard kept it).
	Email          string     `json:"email"`
	EmailAsSent    string     `json:"email_as_sent,omitempty"`
	Domain         string     `json:"domain"`
	Verified       bool       `json:"verified"`
	VerifiedAt     time.Time  `json:"verified_at"`
	UnverifiedAt   *time.Time `json:"unverified_at,omitempty"`
	UnverifyReason string     `json:"unverify_reason,omitempty"`
	UnverifyPhase  string     `json:"unverify_phase,omitempty"`
	// Covered is false when watching Domain does not cover the address's
	// own domain (a private PSL suffix such as github.io or us.com) and
	// that name is not watched itself; NotCoveredWhy explains
	// (domainname.Covered).
	Covered       bool   `json:"covered"`
	NotCoveredWhy string `json:"not_covered_why,omitempty"`
	// WatchName is the address's own name under a private suffix
	// (emails.watch_name); WatchPhase is its phase when DNS evidence
	// watches it (a domains row that is not unmonitored), else empty.
	WatchName  string          `json:"watch_name,omitempty"`
	WatchPhase lifecycle.Phase `json:"watch_phase,omitempty"`
}

// ObservationRecord is one domain_observations row.
type ObservationRecord struct {
	Phase         lifecycle.Phase    `json:"phase"`
	PreviousPhase lifecycle.Phase    `json:"previous_phase,omitempty"`
	ObservedAt    time.Time          `json:"observed_at"`
	Applied       bool               `json:"applied"`
	RecordedAt    time.Time          `json:"recorded_at"`
	MessageID     string             `json:"message_id,omitempty"`
	Evidence      lifecycle.Evidence `json:"evidence"`
}

// AuditRecord is one audit_log row.
type AuditRecord struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Domain    string          `json:"domain,omitempty"`
	UserID    string          `json:"user_id,omitempty"`
	Email     string          `json:"email,omitempty"`
	DryRun    bool            `json:"dry_run,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// Status history limits.
const (
	statusObservations = 20
	statusAudit        = 100
)

// Status reports on an email address (query contains "@", looked up in the
// stored form, domainname.StoredEmail, then in any case) or a domain (any
// host name; its registrable domain is shown). It returns ErrNotFound when
// the address is unknown, or nothing at all is known about the domain.
func (s *Store) Status(ctx context.Context, query string) (StatusReport, error) {
	q := strings.TrimSpace(query)
	rep := StatusReport{Query: q, Emails: []EmailStatus{}, Observations: []ObservationRecord{}, Holds: []Hold{}, Audit: []AuditRecord{}}
	if q == "" {
		return rep, fmt.Errorf("status: query is empty")
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var domain string
		if strings.Contains(q, "@") {
			rep.Kind = "email"
			// The stored key (domain part normalised, as intake and
			// import store it) first; then any case, for a local part
			// typed in another case than the host sent it.
			// An address not yet rekeyed (upgrade window) and audit
			// rows written before migration 0018 hold an older form.
			keys := domainname.LookupKeys(q)
			stored := keys[0]
			emails, err := queryEmails(ctx, tx, `WHERE email = ANY($1) ORDER BY user_id, email`, keys)
			if err == nil && len(emails) == 0 {
				emails, err = queryEmails(ctx, tx, `WHERE lower(email) = lower($1) ORDER BY user_id, email`, stored)
			}
			if err != nil {
				return err
			}
			rep.Emails = emails
			// Audit rows name the key of their time.
			addrs := keys
			for _, e := range emails {
				addrs = append(addrs, e.Email)
				addrs = append(addrs, domainname.OlderKeys(e.EmailAsSent)...)
			}
			if len(emails) > 0 {
				domain = emails[0].Domain
			} else if d, err := domainname.RegistrableFromEmail(q); err == nil {
				domain = d
			}
			if err := queryAudit(ctx, tx, &rep.Audit, `WHERE email = ANY($1) OR (email IS NULL AND domain = $2)`, addrs, domain); err != nil {
				return err
			}
		} else {
			rep.Kind = "domain"
			domain = strings.TrimSuffix(strings.ToLower(q), ".")
			if d, err := domainname.CheckName(q); err == nil {
				domain = d // a name under a private suffix is its own row
			}
			if err := queryAudit(ctx, tx, &rep.Audit, `WHERE domain = $1`, domain); err != nil {
				return err
			}
		}
		if domain == "" {
			return nil
		}
		ds, err := s.domainStatus(ctx, tx, domain)
		if err != nil {
			return err
		}
		rep.Domain = ds
		if rep.Kind == "domain" {
			emails, err := queryEmails(ctx, tx, `WHERE `+addressColumn(domain)+` = $1 AND (verified OR unverify_reason IS NOT NULL) ORDER BY verified, user_id, email LIMIT 200`, domain)
			if err != nil {
				return err
			}
			rep.Emails = emails
		}
		if err := queryObservations(ctx, tx, &rep.Observations, domain); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+holdColumns+` FROM holds WHERE domain = $1 ORDER BY created_at DESC LIMIT 20`, domain)
		if err != nil {
			return fmt.Errorf("holds: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			h, err := scanHold(rows)
			if err != nil {
				return fmt.Errorf("holds: %w", err)
			}
			rep.Holds = append(rep.Holds, h)
		}
		return rows.Err()
	})
	if err != nil {
		return StatusReport{}, fmt.Errorf("status %s: %w", q, err)
	}
	if rep.Kind == "email" && len(rep.Emails) == 0 {
		// Its domain may be known through other addresses; this one is not.
		return rep, fmt.Errorf("status %s: address %w (domainguard has no such address; addresses are keyed by the local part as sent and the normalised domain)", q, ErrNotFound)
	}
	if (rep.Domain == nil || !rep.Domain.Known) && len(rep.Emails) == 0 && len(rep.Audit) == 0 {
		return rep, fmt.Errorf("status %s: %w", q, ErrNotFound)
	}
	return rep, nil
}

func (s *Store) domainStatus(ctx context.Context, tx pgx.Tx, domain string) (*DomainStatus, error) {
	ds := &DomainStatus{Name: domain, Phase: lifecycle.PhaseUnknown, Protected: s.Protected(domain)}
	var (
		phase     string
		evidence  []byte
		next      time.Time
		lastError *string
	)
	err := tx.QueryRow(ctx, `
SELECT phase, evidence, observed_at, phase_since, last_checked_at, next_check_at, check_failures, unmonitored_since, last_error, last_error_at
FROM domains WHERE name = $1`, domain).Scan(&phase, &evidence, &ds.ObservedAt, &ds.PhaseSince, &ds.LastCheckedAt, &next, &ds.CheckFailures, &ds.UnmonitoredSince,
		&lastError, &ds.LastErrorAt)
	if lastError != nil {
		ds.LastError = *lastError
	}
	switch {
	case err == pgx.ErrNoRows:
	case err != nil:
		return nil, fmt.Errorf("domain %s: %w", domain, err)
	default:
		ds.Known, ds.Phase, ds.NextCheckAt = true, lifecycle.Phase(phase), &next
		if len(evidence) > 0 && string(evidence) != "null" {
			ds.Evidence = new(lifecycle.Evidence)
			if err := json.Unmarshal(evidence, ds.Evidence); err != nil {
				return nil, fmt.Errorf("domain %s evidence: %w", domain, err)
			}
		}
	}
	if err := tx.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE verified), count(*) FILTER (WHERE NOT verified AND unverify_reason IS NOT NULL)
FROM emails WHERE `+addressColumn(domain)+` = $1`, domain).Scan(&ds.VerifiedCount, &ds.UnverifiedCount); err != nil {
		return nil, fmt.Errorf("count addresses of %s: %w", domain, err)
	}
	return ds, nil
}

// addressColumn is the emails column that names the addresses of a watched
// name: watch_name for a name under a private suffix, else domain.
func addressColumn(name string) string {
	if domainname.IsWatchName(name) {
		return "watch_name"
	}
	return "domain"
}

func queryEmails(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]EmailStatus, error) {
	rows, err := tx.Query(ctx, `
SELECT user_id, email, COALESCE(email_as_sent, ''), domain, verified, verified_at, unverified_at, COALESCE(unverify_reason, ''), COALESCE(unverify_phase, ''),
       COALESCE(watch_name, ''),
       COALESCE((SELECT phase FROM domains w WHERE w.name = emails.watch_name AND w.unmonitored_since IS NULL), '')
FROM emails `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("emails: %w", err)
	}
	defer rows.Close()
	out := []EmailStatus{}
	for rows.Next() {
		var e EmailStatus
		if err := rows.Scan(&e.UserID, &e.Email, &e.EmailAsSent, &e.Domain, &e.Verified, &e.VerifiedAt, &e.UnverifiedAt, &e.UnverifyReason, &e.UnverifyPhase,
			&e.WatchName, &e.WatchPhase); err != nil {
			return nil, fmt.Errorf("emails: %w", err)
		}
		if e.Covered, e.NotCoveredWhy = domainname.Covered(e.Email); !e.Covered && e.WatchPhase != "" {
			e.Covered, e.NotCoveredWhy = true, "" // its own name is watched through the DNS
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func queryAudit(ctx context.Context, tx pgx.Tx, out *[]AuditRecord, where string, args ...any) error {
	rows, err := tx.Query(ctx, `
SELECT id::text, type, COALESCE(domain, ''), COALESCE(user_id, ''), COALESCE(email, ''), dry_run, created_at, data
FROM audit_log `+where+fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, statusAudit), args...)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a AuditRecord
		if err := rows.Scan(&a.ID, &a.Type, &a.Domain, &a.UserID, &a.Email, &a.DryRun, &a.CreatedAt, &a.Data); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		*out = append(*out, a)
	}
	return rows.Err()
}

func queryObservations(ctx context.Context, tx pgx.Tx, out *[]ObservationRecord, domain string) error {
	rows, err := tx.Query(ctx, fmt.Sprintf(`
SELECT phase, COALESCE(previous_phase, ''), observed_at, applied, recorded_at, COALESCE(message_id, ''), evidence
FROM domain_observations WHERE domain = $1 ORDER BY observed_at DESC, id DESC LIMIT %d`, statusObservations), domain)
	if err != nil {
		return fmt.Errorf("observations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			o           ObservationRecord
			phase, prev string
			ev          []byte
		)
		if err := rows.Scan(&phase, &prev, &o.ObservedAt, &o.Applied, &o.RecordedAt, &o.MessageID, &ev); err != nil {
			return fmt.Errorf("observations: %w", err)
		}
		o.Phase, o.PreviousPhase = lifecycle.Phase(phase), lifecycle.Phase(prev)
		if err := json.Unmarshal(ev, &o.Evidence); err != nil {
			return fmt.Errorf("observation evidence: %w", err)
		}
		*out = append(*out, o)
	}
	return rows.Err()
}

// WriteText prints the report for people. Addresses, evidence and reasons
// come from hosts and registries: control characters and escape sequences
// among them are printed escaped (termtext), never sent to the terminal.
func (r StatusReport) WriteText(w io.Writer) error {
	var buf bytes.Buffer
	if err := r.writeText(&buf); err != nil {
		return err
	}
	_, err := io.WriteString(w, termtext.EscapeText(buf.String()))
	return err
}

func (r StatusReport) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	if d := r.Domain; d != nil {
		fmt.Fprintf(tw, "domain\t%s\n", d.Name)
		if !d.Known {
			fmt.Fprintf(tw, "phase\tnot tracked\n")
		} else {
			fmt.Fprintf(tw, "phase\t%s (since %s, observed %s)\n", d.Phase, ts(d.PhaseSince), ts(d.ObservedAt))
			fmt.Fprintf(tw, "checked\tlast %s, next %s, failures %d\n", ts(d.LastCheckedAt), ts(d.NextCheckAt), d.CheckFailures)
			if d.LastError != "" {
				fmt.Fprintf(tw, "last lookup error\t%s: %s\n", ts(d.LastErrorAt), d.LastError)
			}
			if ev := d.Evidence; ev != nil {
				fmt.Fprintf(tw, "evidence\tprovider %s, statuses [%s], registered %s, expires %s, handle %q\n",
					ev.Provider, strings.Join(ev.Statuses, ", "), ts(ev.RegisteredAt), ts(ev.ExpiresAt), ev.Handle)
				if d := ev.DNS; d != nil {
					fmt.Fprintf(tw, "dns	%s\n", DNSLine(d))
				}
			}
			if d.UnmonitoredSince != nil {
				fmt.Fprintf(tw, "unmonitored	since %s: no RDAP, commercial provider or DNS evidence covers the TLD (checked weekly)\n", ts(d.UnmonitoredSince))
			}
		}
		fmt.Fprintf(tw, "addresses\t%d verified, %d unverified by domainguard\n", d.VerifiedCount, d.UnverifiedCount)
		if d.Protected {
			fmt.Fprintf(tw, "protected\tyes (changes are held for an operator)\n")
		}
	}
	for _, e := range r.Emails {
		state := "verified since " + e.VerifiedAt.UTC().Format(time.RFC3339)
		if !e.Verified {
			state = fmt.Sprintf("UNVERIFIED %s (%s, phase %s)", ts(e.UnverifiedAt), e.UnverifyReason, e.UnverifyPhase)
		}
		fmt.Fprintf(tw, "email\t%s user %s: %s\n", e.Email, e.UserID, state)
		if e.EmailAsSent != "" && e.EmailAsSent != e.Email {
			fmt.Fprintf(tw, "as sent\t%s\n", e.EmailAsSent)
		}
		switch {
		case !e.Covered:
			fmt.Fprintf(tw, "coverage\tNOT COVERED: %s\n", e.NotCoveredWhy)
		case e.WatchPhase != "":
			fmt.Fprintf(tw, "coverage\tcovered: its own name %s (under the private suffix %s) is watched through DNS evidence, phase %s; %s is watched too\n",
				e.WatchName, domainname.PrivateSuffix(e.WatchName), e.WatchPhase, e.Domain)
		}
	}
	for _, h := range r.Holds {
		fmt.Fprintf(tw, "hold\t%s %s %s %s/%s, %d addresses, %s\n", h.ID, h.Status, h.Cause, h.Phase, h.Reason, len(h.Addresses), h.CreatedAt.UTC().Format(time.RFC3339))
	}
	for _, o := range r.Observations {
		applied := "applied"
		if !o.Applied {
			applied = "not applied (stale)"
		}
		fmt.Fprintf(tw, "observation\t%s %s -> %s, %s\n", o.ObservedAt.UTC().Format(time.RFC3339), o.PreviousPhase, o.Phase, applied)
	}
	for _, a := range r.Audit {
		dry := ""
		if a.DryRun {
			dry = " (dry run)"
		}
		who := a.Email
		if who == "" {
			who = a.Domain
		}
		fmt.Fprintf(tw, "audit\t%s %s %s%s\n", a.CreatedAt.UTC().Format(time.RFC3339), a.Type, who, dry)
	}
	return tw.Flush()
}

// DNSLine renders DNS evidence on one line: the parent zone's answer, NS
// set, MX, SOA, and a pending or confirmed undelegation.
func DNSLine(d *lifecycle.DNSEvidence) string {
	var b strings.Builder
	switch {
	case d.Delegated:
		fmt.Fprintf(&b, "delegated (%s) to [%s]", d.Rcode, strings.Join(d.Nameservers, ", "))
	case d.Hosted:
		fmt.Fprintf(&b, "held in the parent zone without a cut (%s)", d.Rcode)
	default:
		fmt.Fprintf(&b, "not delegated (%s)", d.Rcode)
	}
	if d.ParentServer != "" {
		fmt.Fprintf(&b, " by %s", d.ParentServer)
	}
	switch {
	case d.MXKnown && len(d.MX) == 0:
		b.WriteString(", no MX")
	case d.MXKnown:
		fmt.Fprintf(&b, ", MX [%s]", strings.Join(d.MX, ", "))
	default:
		b.WriteString(", MX not known")
	}
	if d.SOAMname != "" {
		fmt.Fprintf(&b, ", SOA %s serial %d", d.SOAMname, d.SOASerial)
	}
	if d.UndelegatedSince != nil {
		fmt.Fprintf(&b, ", undelegated since %s", d.UndelegatedSince.UTC().Format(time.RFC3339))
	}
	if len(d.BaselineNameservers) > 0 {
		fmt.Fprintf(&b, ", last active NS [%s]", strings.Join(d.BaselineNameservers, ", "))
	}
	return b.String()
}
