-- domainguard schema, version 1 (DESIGN.md §7).

-- emails is the system of record for whether an address may be trusted for
-- account recovery.
CREATE TABLE emails (
    user_id          text        NOT NULL,
    email            text        NOT NULL,
    domain           text        NOT NULL,
    verified         boolean     NOT NULL DEFAULT true,
    verified_at      timestamptz NOT NULL,
    unverified_at    timestamptz,
    unverify_reason  text,
    unverify_phase   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, email)
);
-- The enforcer reads the verified addresses of one domain.
CREATE INDEX emails_domain_verified_idx ON emails (domain) WHERE verified;
CREATE INDEX emails_email_idx ON emails (email);

CREATE TABLE domains (
    name              text        PRIMARY KEY,
    phase             text        NOT NULL DEFAULT 'unknown',
    evidence          jsonb,
    registered_at     timestamptz,
    expires_at        timestamptz,
    handle            text,
    observed_at       timestamptz,          -- observed_at of the last applied observation
    phase_since       timestamptz,
    released_since    timestamptz,
    last_checked_at   timestamptz,          -- last successful lookup (heartbeat or change)
    next_check_at     timestamptz NOT NULL DEFAULT now(),
    check_failures    integer     NOT NULL DEFAULT 0,
    last_enqueued_at  timestamptz,
    expiry_warned_for timestamptz,          -- expiry date of the last audit.domain.expiring
    created_at        timestamptz NOT NULL DEFAULT now()
);
-- The sweep walks due domains in (next_check_at, name) order.
CREATE INDEX domains_next_check_idx ON domains (next_check_at, name);

CREATE TABLE domain_observations (
    id          bigserial   PRIMARY KEY,
    domain      text        NOT NULL,
    phase       text        NOT NULL,
    evidence    jsonb       NOT NULL,
    observed_at timestamptz NOT NULL,
    applied     boolean     NOT NULL,
    message_id  text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domain_observations_domain_idx ON domain_observations (domain, observed_at);

CREATE TABLE audit_log (
    id         uuid        PRIMARY KEY,      -- the CloudEvent id
    type       text        NOT NULL,         -- e.g. audit.email.unverified
    domain     text,
    user_id    text,
    email      text,
    dry_run    boolean     NOT NULL DEFAULT false,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_domain_idx ON audit_log (domain, created_at);
CREATE INDEX audit_log_email_idx ON audit_log (email, created_at);

-- outbox holds audit events until the relay has published them to AUDIT.
CREATE TABLE outbox (
    id         uuid        PRIMARY KEY,      -- the CloudEvent id, used as Nats-Msg-Id
    subject    text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (created_at) WHERE sent_at IS NULL;

-- processed_messages makes every consumer idempotent under redelivery.
CREATE TABLE processed_messages (
    consumer     text        NOT NULL,
    message_id   text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE holds (
    id          uuid        PRIMARY KEY,
    domain      text        NOT NULL,
    cause       text        NOT NULL,        -- cap | protected
    reason      text        NOT NULL,
    phase       text        NOT NULL,
    observation jsonb       NOT NULL,
    addresses   jsonb       NOT NULL,        -- the addresses the change would unverify
    status      text        NOT NULL DEFAULT 'pending',  -- pending | approved | rejected
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    decided_by  text
);
CREATE INDEX holds_pending_idx ON holds (created_at) WHERE status = 'pending';

-- breaker is a single row: whether enforcement is paused.
CREATE TABLE breaker (
    id        integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    open      boolean     NOT NULL DEFAULT false,
    opened_at timestamptz,
    reason    text,
    resumed_at timestamptz,
    resumed_by text
);
INSERT INTO breaker (id) VALUES (1);

-- lookup_budget counts checks enqueued per hour, for the rolling daily budget.
CREATE TABLE lookup_budget (
    hour  timestamptz PRIMARY KEY,
    count integer     NOT NULL DEFAULT 0
);
