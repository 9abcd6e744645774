-- 0001: payments, refunds, idempotency keys, the insert-only audit log, merchant API keys.
-- Amounts are BIGINT minor units; timestamps are timestamptz. Status values are those of
-- payment_service.app.states (tests check the CHECK lists against the enums).

CREATE TABLE transactions (
    transaction_id     text        PRIMARY KEY,
    merchant_id        text        NOT NULL,
    status             text        NOT NULL CHECK (status IN (
                           'processing', 'authorized', 'unknown', 'unknown_capture', 'captured',
                           'failed', 'partially_refunded', 'refunded')),
    amount_minor       bigint      NOT NULL CHECK (amount_minor > 0),
    currency           char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_method     text        NOT NULL,
    -- AES-256-GCM envelope of the card number (key id inside); never the clear number.
    card_envelope      text        NOT NULL,
    card_fingerprint   text        NOT NULL,
    card_brand         text        NOT NULL,
    card_last4         char(4)     NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
    card_expiry_month  smallint    NOT NULL CHECK (card_expiry_month BETWEEN 1 AND 12),
    card_expiry_year   smallint    NOT NULL,
    cardholder_name    text        NOT NULL,
    description        text        NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key    text        NULL,
    request_hash       text        NULL,
    authorization_id   text        NULL,
    captured_minor     bigint      NOT NULL DEFAULT 0,
    refunded_minor     bigint      NOT NULL DEFAULT 0,
    failure_code       text        NULL,
    decline_code       text        NULL,
    failure_message    text        NULL,
    correlation_id     text        NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_captured_le_amount CHECK (captured_minor <= amount_minor),
    CONSTRAINT transactions_captured_nonnegative CHECK (captured_minor >= 0),
    CONSTRAINT transactions_refunded_le_captured CHECK (refunded_minor <= captured_minor),
    CONSTRAINT transactions_refunded_nonnegative CHECK (refunded_minor >= 0)
);
CREATE INDEX transactions_merchant_created ON transactions (merchant_id, created_at);
CREATE INDEX transactions_status ON transactions (status);
CREATE UNIQUE INDEX transactions_merchant_idempotency
    ON transactions (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE refunds (
    refund_id          text        PRIMARY KEY,
    transaction_id     text        NOT NULL REFERENCES transactions (transaction_id),
    merchant_id        text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('processing', 'completed', 'failed')),
    amount_minor       bigint      NOT NULL CHECK (amount_minor > 0),
    currency           char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason             text        NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key    text        NULL,
    request_hash       text        NULL,
    bank_refund_id     text        NULL,
    failure_code       text        NULL,
    failure_message    text        NULL,
    correlation_id     text        NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_transaction_created ON refunds (transaction_id, created_at);
CREATE INDEX refunds_processing ON refunds (transaction_id) WHERE status = 'processing';
CREATE UNIQUE INDEX refunds_merchant_idempotency
    ON refunds (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- One row per (merchant, key) for payments and refunds alike (Stripe: keys are merchant-scoped).
CREATE TABLE idempotency_keys (
    merchant_id        text        NOT NULL,
    idempotency_key    text        NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('payment', 'refund')),
    request_hash       text        NULL,
    resource_id        text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, idempotency_key)
);

CREATE TABLE audit_log (
    id                 bigserial   PRIMARY KEY,
    event_id           uuid        NOT NULL UNIQUE,
    transaction_id     text        NOT NULL,
    refund_id          text        NULL,
    merchant_id        text        NOT NULL,
    action             text        NOT NULL,
    from_status        text        NULL,
    to_status          text        NULL,
    amount_minor       bigint      NULL,
    currency           char(3)     NULL,
    correlation_id     text        NULL,
    details            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_transaction ON audit_log (transaction_id, id);

-- The audit log is insert-only: rows are never changed or removed, even by the service itself.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is insert-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Merchant API keys: only a SHA-256 of the whole key is kept (see docs/storage.md).
CREATE TABLE api_keys (
    key_id             text        PRIMARY KEY,
    merchant_id        text        NOT NULL,
    name               text        NOT NULL,
    secret_hash        bytea       NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_used_at       timestamptz NULL,
    revoked_at         timestamptz NULL
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id);
