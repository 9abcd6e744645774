-- 0002: card custody (issue 10): cards on file, no card envelope on payments, the custody audit.

-- Retention: a payment keeps brand, last four, expiry, holder name and the fingerprint, never an
-- envelope (it was written and never read). The UPDATE first, so the live rows lose the old
-- ciphertext before the column goes; autovacuum then reclaims the dead row versions, and the
-- legacy ENCRYPTION_KEY is destroyed once rewrap has converted what still used it.
ALTER TABLE transactions ALTER COLUMN card_envelope DROP NOT NULL;
UPDATE transactions SET card_envelope = NULL WHERE card_envelope IS NOT NULL;
ALTER TABLE transactions DROP COLUMN card_envelope;
-- NULL when the processor could not open the card (the payment failed before the bank).
ALTER TABLE transactions ALTER COLUMN card_fingerprint DROP NOT NULL;
ALTER TABLE transactions ADD COLUMN payment_method_id text NULL;

-- Cards on file (Stripe's PaymentMethod), merchant-scoped. The only long-lived card envelopes.
CREATE TABLE payment_methods (
    payment_method_id  text        PRIMARY KEY CHECK (payment_method_id ~ '^pm_[A-Za-z0-9]{8,64}$'),
    merchant_id        text        NOT NULL,
    -- HPKE envelope of the card number sealed for this id (purpose card_on_file), and its key id
    -- (for rewrap and retire); both NULL once detached, for good.
    envelope           text        NULL,
    key_id             text        NULL,
    fingerprint        text        NOT NULL,
    brand              text        NOT NULL,
    last4              char(4)     NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    expiry_month       smallint    NOT NULL CHECK (expiry_month BETWEEN 1 AND 12),
    expiry_year        smallint    NOT NULL,
    cardholder_name    text        NOT NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key    text        NULL,
    request_hash       text        NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    detached_at        timestamptz NULL,
    CONSTRAINT payment_methods_envelope_until_detached
        CHECK ((envelope IS NULL) = (detached_at IS NOT NULL)),
    CONSTRAINT payment_methods_key_id_with_envelope CHECK ((envelope IS NULL) = (key_id IS NULL))
);
CREATE INDEX payment_methods_merchant_created ON payment_methods (merchant_id, created_at);
CREATE INDEX payment_methods_sealed_by ON payment_methods (key_id) WHERE envelope IS NOT NULL;
CREATE UNIQUE INDEX payment_methods_merchant_idempotency
    ON payment_methods (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_kind_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_kind_check
    CHECK (kind IN ('payment', 'refund', 'payment_method'));

-- Who did what to card custody: cards on file created and detached, keys rotated and retired,
-- rewrap runs. Insert-only, like audit_log (whose rows all name a transaction).
CREATE TABLE custody_audit (
    id                 bigserial   PRIMARY KEY,
    event_id           uuid        NOT NULL UNIQUE,
    action             text        NOT NULL,
    actor              text        NOT NULL,
    merchant_id        text        NULL,
    payment_method_id  text        NULL,
    key_id             text        NULL,
    details            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX custody_audit_payment_method ON custody_audit (payment_method_id, id)
    WHERE payment_method_id IS NOT NULL;

CREATE FUNCTION custody_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'custody_audit is insert-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER custody_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON custody_audit
    FOR EACH ROW EXECUTE FUNCTION custody_audit_refuse_change();
CREATE TRIGGER custody_audit_no_truncate
    BEFORE TRUNCATE ON custody_audit
    FOR EACH STATEMENT EXECUTE FUNCTION custody_audit_refuse_change();
