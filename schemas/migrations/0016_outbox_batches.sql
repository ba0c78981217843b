-- Outbox batches (issue #16): the enforcer writes the audit events of an
-- enforcing statement already marked sent, together with one unsent batch
-- row (subject domainguard.outbox.batch, payload the JSON list of their ids),
-- and publishes them straight after the commit. The batch row is marked sent
-- once JetStream acknowledged every event; until then the relay may publish
-- the rows it lists. Pruning therefore keeps every row at least as new as
-- the oldest unsent batch row, whatever its sent_at says.
CREATE OR REPLACE FUNCTION prune_outbox(retention interval) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH gone AS (
        DELETE FROM outbox
         WHERE sent_at IS NOT NULL AND sent_at < now() - greatest(retention, interval '1 day')
           AND created_at < coalesce((SELECT min(created_at) FROM outbox
                                       WHERE sent_at IS NULL AND subject = 'domainguard.outbox.batch'),
                                     'infinity')
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
