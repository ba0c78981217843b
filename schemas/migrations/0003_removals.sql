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
