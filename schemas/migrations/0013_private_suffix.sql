-- Names under private PSL suffixes (issue #13 item 10): acme.us.com,
-- foo.github.io. The registrable domain (us.com, github.io) stays active
-- when the user's own name lapses with the suffix's operator, so the full
-- name is watched too, through the DNS alone (DESIGN.md §2).

-- watch_name is the address's name under a private suffix (WatchName:
-- "acme.us.com" for alice@mail.acme.us.com); NULL for every other address.
-- With DNS evidence on, a domains row of that name is watched, and its
-- lapse unverifies the address like a lapse of the registrable domain.
ALTER TABLE emails ADD COLUMN watch_name text;
-- The enforcer reads the addresses of one watched name (as it does of one
-- domain with emails_domain_verified_idx / emails_domain_unverified_idx).
CREATE INDEX emails_watch_name_idx ON emails (watch_name) WHERE watch_name IS NOT NULL;

-- private_suffix marks a domains row that is such a name: checked by DNS
-- evidence only (no registry holds it), never against the lookup budget.
ALTER TABLE domains ADD COLUMN private_suffix boolean NOT NULL DEFAULT false;
