-- domainguard: PostgreSQL roles with least privilege, one per role that
-- uses the database (DESIGN.md §7). The checker has no database access at
-- all (it only talks to NATS and the lookup providers): give it no
-- DATABASE_URL.
--
--   domainguard_producer  intake of host events, CSV import, sweep
--   domainguard_enforcer  decisions, holds, breaker, audit log, outbox relay;
--                         also `domainguard holds ...` and `breaker resume`
--   domainguard_operator  read only: dashboards, `domainguard status`,
--                         ad-hoc queries
--
-- The roles are NOLOGIN groups; give each process a login role in one:
--   CREATE ROLE dg_producer LOGIN PASSWORD '...' IN ROLE domainguard_producer;
-- `domainguard migrate` runs as the owner of the database (the tables
-- belong to it), never as one of these roles.
--
-- Apply after every migration, connected to the domainguard database as
-- its owner or a superuser:
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/sql/roles.sql
-- It is idempotent and declarative: it first revokes what the roles hold on
-- the schema's tables, then grants exactly what is listed here (and
-- replaces the enforcer's unverify-only trigger at the end). A table a
-- later migration adds is reachable by no role until it is listed here.
--
-- Every domainguard table lives in the schema "domainguard" (created by
-- `domainguard migrate`), never in public, so the host's own tables are
-- neither touched nor shadowed; domainguard sets that search_path on every
-- connection it opens, and this script sets it for the grants below.

SET search_path TO domainguard;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['domainguard_producer', 'domainguard_enforcer', 'domainguard_operator'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
        EXECUTE format('GRANT USAGE ON SCHEMA domainguard TO %I', r);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA domainguard FROM %I', r);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA domainguard FROM %I', r);
    END LOOP;
    -- The CSV import loads batches through a temporary table.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO domainguard_producer', current_database());
END
$$;

-- producer ------------------------------------------------------------------
-- Intake and import upsert addresses (a newer host verification verifies
-- again) and delete removed ones; they add new domains. The sweep reads
-- domains and moves only their schedule; the budget is its own table.
-- It cannot change a domain's phase or evidence, and cannot touch the audit
-- log, the outbox, holds, the breaker or the observation history.
-- UPDATE (email) and DELETE on email_removals: the start's pass that moves
-- rows stored under an older key to the normalised one and merges two rows
-- of one address (producer.RekeyAddresses). They add nothing the role
-- could not do already: it may delete any address and create a verified
-- one, which is more than renaming a row or dropping a tombstone.
GRANT SELECT, DELETE ON emails TO domainguard_producer;
GRANT INSERT (user_id, email, domain, verified, verified_at, event_at, email_as_sent, watch_name) ON emails TO domainguard_producer;
GRANT UPDATE (email, domain, verified, verified_at, event_at, email_as_sent, watch_name, unverified_at, unverify_reason, unverify_phase, updated_at)
    ON emails TO domainguard_producer;
-- Removal tombstones: a verified event not newer than the removal does not
-- bring the address back.
GRANT SELECT, INSERT, DELETE ON email_removals TO domainguard_producer;
GRANT UPDATE (removed_at, recorded_at) ON email_removals TO domainguard_producer;
-- Pruning (its processed-message ids, old tombstones) through the owner's
-- functions, which delete nothing younger than the retention (a tombstone
-- the role deletes itself is one the rekeying merged into another).
GRANT EXECUTE ON FUNCTION prune_processed_messages(text, timestamptz), prune_email_removals(timestamptz) TO domainguard_producer;
GRANT SELECT ON domains TO domainguard_producer;
-- private_suffix: a name under a private PSL suffix (acme.us.com), which
-- intake, import and the sweeper's start add with DNS evidence on.
GRANT INSERT (name, next_check_at, private_suffix) ON domains TO domainguard_producer;
GRANT UPDATE (next_check_at, last_enqueued_at) ON domains TO domainguard_producer;
-- The backfill marker (the rules the watch_name backfill last completed
-- against): read and locked at start, updated after a backfill; its rows
-- come from the migration.
GRANT SELECT ON backfills TO domainguard_producer;
GRANT UPDATE (revision, completed_at) ON backfills TO domainguard_producer;
GRANT SELECT, INSERT, UPDATE, DELETE ON lookup_budget TO domainguard_producer;
GRANT SELECT, INSERT ON processed_messages TO domainguard_producer;

-- enforcer ------------------------------------------------------------------
-- Reads addresses and unverifies them (only the unverification columns:
-- it never creates, deletes or re-dates an address); owns the domains' state
-- and the observation history, audit log, outbox, holds and breaker.
GRANT SELECT ON emails TO domainguard_enforcer;
GRANT UPDATE (verified, unverified_at, unverify_reason, unverify_phase, updated_at) ON emails TO domainguard_enforcer;
GRANT SELECT, INSERT, UPDATE ON domains TO domainguard_enforcer;
GRANT SELECT, INSERT ON domain_observations TO domainguard_enforcer;
GRANT USAGE ON SEQUENCE domain_observations_id_seq TO domainguard_enforcer;
GRANT SELECT, INSERT ON audit_log TO domainguard_enforcer;
GRANT SELECT, INSERT ON outbox TO domainguard_enforcer;
GRANT UPDATE (sent_at) ON outbox TO domainguard_enforcer;
GRANT SELECT, INSERT ON processed_messages TO domainguard_enforcer;
-- Pruning sent outbox rows and its processed-message ids only through the
-- owner's functions: the role itself may not delete (an unsent audit event
-- must never disappear).
GRANT EXECUTE ON FUNCTION prune_outbox(interval), prune_processed_messages(text, timestamptz) TO domainguard_enforcer;
GRANT SELECT, INSERT ON holds TO domainguard_enforcer;
GRANT UPDATE (status, decided_at, decided_by) ON holds TO domainguard_enforcer;
GRANT SELECT ON breaker TO domainguard_enforcer;
GRANT UPDATE (open, opened_at, reason, resumed_at, resumed_by) ON breaker TO domainguard_enforcer;

-- operator (read only) ------------------------------------------------------
GRANT SELECT ON ALL TABLES IN SCHEMA domainguard TO domainguard_operator;

-- The enforcer only ever unverifies ---------------------------------------
-- Its column grant on emails.verified would also let it set an address
-- back to verified; this trigger refuses that for members of the enforcer
-- role (domainguard never re-verifies: DESIGN.md §3). The producer (a host
-- verification) and the owner are not affected.
CREATE OR REPLACE FUNCTION domainguard_enforcer_unverify_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.verified AND NOT OLD.verified AND pg_has_role(current_user, 'domainguard_enforcer', 'USAGE') THEN
        RAISE EXCEPTION 'the enforcer may only unverify addresses (user %, %)', OLD.user_id, OLD.email
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS emails_enforcer_unverify_only ON emails;
CREATE TRIGGER emails_enforcer_unverify_only BEFORE UPDATE OF verified ON emails
    FOR EACH ROW EXECUTE FUNCTION domainguard_enforcer_unverify_only();
