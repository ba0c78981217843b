-- Removal tombstones (issue #14): a host's accounts.email.removed must not
-- be undone by a verified event of the same address that is not newer.

-- email_removals keeps, per address, the time of the latest removal the
-- host sent (its CloudEvent time; without an envelope, the time the
-- message was stored in ACCOUNTS). A verified event (or import row) whose
-- time (CloudEvent time, else verified_at) is not after removed_at does not
-- bring the address back.
CREATE TABLE email_removals (
    user_id    text        NOT NULL,
    email      text        NOT NULL,
    removed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, email)
);
CREATE INDEX email_removals_recorded_idx ON email_removals (recorded_at);

-- event_at is the time of the host event that last verified the address
-- (CloudEvent time, else verified_at): a removal older than it is not
-- applied (the host re-added the address after removing it).
ALTER TABLE emails ADD COLUMN event_at timestamptz;

-- Pruning under the least-privilege roles (issue #14): the roles may not
-- DELETE from outbox or processed_messages (a compromised enforcer must not
-- drop unsent audit events), so pruning goes through these functions,
-- which run as the owner and delete only what retention allows: sent
-- outbox rows at least a day old, processed-message ids at least 14 days
-- old (ACCOUNTS and DOMAIN_EVENTS keep messages 14 days; no redelivery
-- outlives its id), removal tombstones at least 90 days old. Grant EXECUTE
-- to the role that prunes (deploy/sql/roles.sql).
CREATE FUNCTION prune_outbox(retention interval) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH gone AS (
        DELETE FROM outbox
         WHERE sent_at IS NOT NULL AND sent_at < now() - greatest(retention, interval '1 day')
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

CREATE FUNCTION prune_processed_messages(consumer_name text, older_than timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH gone AS (
        DELETE FROM processed_messages
         WHERE consumer = consumer_name AND processed_at < least(older_than, now() - interval '14 days')
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

CREATE FUNCTION prune_email_removals(older_than timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH gone AS (
        DELETE FROM email_removals WHERE recorded_at < least(older_than, now() - interval '90 days')
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

REVOKE ALL ON FUNCTION prune_outbox(interval), prune_processed_messages(text, timestamptz), prune_email_removals(timestamptz) FROM PUBLIC;
