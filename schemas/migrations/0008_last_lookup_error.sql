-- The last failed lookup of a domain, for `domainguard status` (an
-- air-gapped checker, a provider outage): what went wrong and when. Kept
-- after a later success; compare last_error_at with last_checked_at.
ALTER TABLE domains ADD COLUMN last_error text;
ALTER TABLE domains ADD COLUMN last_error_at timestamptz;
