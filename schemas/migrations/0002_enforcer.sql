-- Enforcer additions (enforcer package): what the breaker counts, what a
-- hold needs to be applied later, and indexes for the enforcer's reads.

-- previous_phase and turned_lapsed let the breaker count the domains that
-- turned non-active (active or grace -> expired, redemption, pending_delete,
-- released) within its window.
ALTER TABLE domain_observations ADD COLUMN previous_phase text;
ALTER TABLE domain_observations ADD COLUMN turned_lapsed boolean NOT NULL DEFAULT false;
CREATE INDEX domain_observations_lapsed_idx ON domain_observations (recorded_at) WHERE turned_lapsed;

-- The breaker's denominator: domains looked at within the window.
CREATE INDEX domains_last_checked_idx ON domains (last_checked_at);

-- The addresses domainguard unverified on a domain (for audit.domain.restored
-- and .reregistered).
CREATE INDEX emails_domain_unverified_idx ON emails (domain) WHERE NOT verified AND unverify_reason IS NOT NULL;

-- A hold keeps what applying it needs: the phase it came from and the input
-- message. Causes: cap | protected | breaker. Status: pending | approved |
-- rejected | superseded (a newer applied observation of the domain replaced
-- it).
ALTER TABLE holds ADD COLUMN previous_phase text;
ALTER TABLE holds ADD COLUMN message_id text;
CREATE INDEX holds_domain_pending_idx ON holds (domain) WHERE status = 'pending';
