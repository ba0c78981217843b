package hostapi

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/producer"
)

// Address is the answer of GET /v1/addresses/{email}: what a host asks at
// password-reset time.
type Address struct {
	Email  string `json:"email"`
	Domain string `json:"domain"`
	// Phase is the domain's current phase ("unknown" before its first
	// lookup).
	Phase lifecycle.Phase `json:"phase"`
	// Reason is why domainguard unverified the address; empty unless it did.
	Reason string `json:"reason"`
	// CheckedAt is the domain's last successful lookup; null before one.
	CheckedAt *time.Time `json:"checked_at"`
	// Verified is false once domainguard unverified the address (for every
	// user holding it, or for the user asked about).
	Verified     bool       `json:"verified"`
	UnverifiedAt *time.Time `json:"unverified_at"`
	// TrustedForReset is false once domainguard unverified the address, and
	// while its domain is in any phase other than active or unknown (grace
	// included: a sale can happen there).
	TrustedForReset bool          `json:"trusted_for_reset"`
	Users           []AddressUser `json:"users"`
}

// AddressUser is one user holding the address.
type AddressUser struct {
	UserID string `json:"user_id"`
	// EmailAsSent is the address as the host sent it for this user ("" for
	// addresses stored before domainguard kept it); Email above is the
	// normalised key it was looked up by.
	EmailAsSent  string     `json:"email_as_sent"`
	Verified     bool       `json:"verified"`
	VerifiedAt   time.Time  `json:"verified_at"`
	UnverifiedAt *time.Time `json:"unverified_at"`
	Reason       string     `json:"reason"`
}

// addressSQL is the one indexed query (emails_email_idx, domains pkey); it
// lists at most 100 users of one address, with the phase of the address's
// own name under a private suffix where that name is watched ('unknown'
// otherwise).
const addressSQL = `
SELECT e.user_id, COALESCE(e.email_as_sent, ''), e.domain, e.verified, e.verified_at, e.unverified_at, COALESCE(e.unverify_reason, ''),
       COALESCE(d.phase, 'unknown'), d.last_checked_at, COALESCE(w.phase, 'unknown')
  FROM emails e LEFT JOIN domains d ON d.name = e.domain LEFT JOIN domains w ON w.name = e.watch_name
 WHERE e.email = ANY($1::text[]) AND ($2 = '' OR e.user_id = $2)
 ORDER BY e.user_id
 LIMIT 100`

// TrustedForReset is the reset-time rule: the address is still verified
// and its domain is active or not yet looked at.
func TrustedForReset(verified bool, phase lifecycle.Phase) bool {
	return verified && (phase == lifecycle.PhaseActive || phase == lifecycle.PhaseUnknown)
}

func (a *API) getAddress(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("email")
	userID := r.URL.Query().Get("user_id")
	if len(userID) > 256 {
		writeError(w, http.StatusBadRequest, "invalid_user_id", "user_id is longer than 256 bytes")
		return
	}
	norm, err := producer.NormalizeAddress("lookup", raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_email", err.Error())
		return
	}
	// By the stored key (local part as given, domain part normalised), so
	// any form of the address finds it, and by the older forms a row not
	// yet rekeyed may hold (upgrade window): domainname.LookupKeys.
	rows, err := a.cfg.Pool.Query(r.Context(), addressSQL, domainname.LookupKeys(raw), userID)
	if err != nil {
		a.log.Error("host API: address lookup", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the lookup failed; retry")
		return
	}
	out := Address{Email: norm.Email, Domain: norm.Domain, Phase: lifecycle.PhaseUnknown, Verified: true, Users: make([]AddressUser, 0, 1)}
	var (
		u     AddressUser
		dom   string
		phase string
		check *time.Time
		watch string // phase of the address's own name under a private suffix
	)
	_, err = pgx.ForEachRow(rows, []any{&u.UserID, &u.EmailAsSent, &dom, &u.Verified, &u.VerifiedAt, &u.UnverifiedAt, &u.Reason, &phase, &check, &watch}, func() error {
		out.Domain, out.Phase, out.CheckedAt = dom, lifecycle.Phase(phase), check
		if !u.Verified {
			out.Verified = false
			if u.UnverifiedAt != nil && (out.UnverifiedAt == nil || u.UnverifiedAt.After(*out.UnverifiedAt)) {
				out.UnverifiedAt, out.Reason = u.UnverifiedAt, u.Reason
			}
		}
		// Two rows of one user (one not yet rekeyed, rows by user_id):
		// one entry, unverified if either is.
		if n := len(out.Users); n > 0 && out.Users[n-1].UserID == u.UserID {
			if prev := &out.Users[n-1]; prev.Verified && !u.Verified {
				*prev = u
			}
		} else {
			out.Users = append(out.Users, u)
		}
		u = AddressUser{}
		return nil
	})
	if err != nil {
		a.log.Error("host API: address lookup", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the lookup failed; retry")
		return
	}
	if len(out.Users) == 0 {
		writeError(w, http.StatusNotFound, "unknown_address", "domainguard does not watch this address")
		return
	}
	// The own name under a private suffix must be trustworthy too.
	out.TrustedForReset = TrustedForReset(out.Verified, out.Phase) && TrustedForReset(true, lifecycle.Phase(watch))
	writeJSON(w, http.StatusOK, out)
}
