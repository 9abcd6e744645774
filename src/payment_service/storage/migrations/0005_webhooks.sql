-- 0005: webhook endpoints, merchant-facing events (derived from audit_log), deliveries.
-- docs/webhooks.md explains the flow; events are kept 30 days (the dispatcher purges them).

CREATE TABLE webhook_endpoints (
    endpoint_id        text        PRIMARY KEY CHECK (endpoint_id ~ '^we_[A-Za-z0-9]{8,64}$'),
    merchant_id        text        NOT NULL,
    url                text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    enabled_events     text[]      NOT NULL CHECK (cardinality(enabled_events) > 0),
    description        text        NULL,
    -- The signing secret sealed with AES-256-GCM under a key derived from SECRET_KEY, bound to
    -- the endpoint id (webhooks/secrets.py); the dispatcher needs the secret itself to sign.
    secret_envelope    text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz NULL
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, created_at)
    WHERE deleted_at IS NULL;

-- One event per transition: the id is evt_ + the audit row's event_id (deterministic).
CREATE TABLE events (
    event_id           text        PRIMARY KEY CHECK (event_id ~ '^evt_[0-9a-f]{32}$'),
    merchant_id        text        NOT NULL,
    type               text        NOT NULL,
    object_id          text        NOT NULL,
    -- The payment or refund view: brand and last four digits of the card, never its number.
    data               jsonb       NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
-- The events API: newest first per merchant, with the id as the tie-break of the cursor.
CREATE INDEX events_merchant_created ON events (merchant_id, created_at DESC, event_id DESC);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE webhook_deliveries (
    endpoint_id        text        NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    event_id           text        NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    status             text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts           integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at    timestamptz NULL,
    last_attempt_at    timestamptz NULL,
    last_status_code   integer     NULL,
    last_error         text        NULL,
    give_up_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, event_id),
    CONSTRAINT webhook_deliveries_pending_has_time
        CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, endpoint_id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- How far the dispatcher has read audit_log (by id; docs/webhooks.md: late commits).
CREATE TABLE webhook_cursor (
    name               text        PRIMARY KEY,
    audit_id           bigint      NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
