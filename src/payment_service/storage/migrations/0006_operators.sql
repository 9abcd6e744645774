-- 0006: operators (issue 12): durable refusals and a hash-chained audit log.
-- Privileges are not granted here: the migrator grants the runtime role what it may do after
-- every run (storage/roles.py), so the files stay independent of role names.

-- A command refused by a rule (a refund exceeding what remains, a payment that is not
-- refundable, a card the merchant may not charge), recorded in the transaction that decided it.
-- A redelivery or a replay of the same command reads this row and answers the same refusal,
-- even if the rule would now decide otherwise (an earlier in-flight refund has since failed).
-- One row per command: the refund id, or the transaction id of a refused payment.
CREATE TABLE refusals (
    command_id         text        PRIMARY KEY,
    kind               text        NOT NULL CHECK (kind IN ('payment', 'refund')),
    transaction_id     text        NOT NULL,
    merchant_id        text        NOT NULL,
    code               text        NOT NULL,
    message            text        NOT NULL,
    param              text        NULL,
    amount_minor       bigint      NULL,
    request_hash       text        NULL,
    correlation_id     text        NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refusals_transaction ON refusals (transaction_id, created_at);

CREATE FUNCTION refusals_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refusals is insert-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER refusals_no_update_delete
    BEFORE UPDATE OR DELETE ON refusals
    FOR EACH ROW EXECUTE FUNCTION refusals_refuse_change();

-- The hash chain: each row's hash covers its own columns and the hash of the previous row of
-- the same payment, so an edited, removed or reordered row breaks every hash after it. The
-- actor (0003) is in it too: who asked is evidence as much as what happened.
-- `ops verify` recomputes it in Python from the columns (operators/chain.py); the text form
-- below is the one both sides use, with explicit formats (no DateStyle or TimeZone in it).
ALTER TABLE audit_log ADD COLUMN prev_hash bytea NULL;
ALTER TABLE audit_log ADD COLUMN row_hash bytea NULL;

CREATE FUNCTION audit_log_chain_text(r audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT concat_ws(chr(31),
        r.id::text, r.event_id::text, r.transaction_id, coalesce(r.refund_id, '\N'),
        r.merchant_id, r.action, coalesce(r.from_status, '\N'), coalesce(r.to_status, '\N'),
        coalesce(r.amount_minor::text, '\N'), coalesce(r.currency::text, '\N'),
        coalesce(r.correlation_id, '\N'), r.details::text,
        (extract(epoch FROM r.created_at) * 1000000)::bigint::text, coalesce(r.actor, '\N'))
$$;

CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One appender per payment at a time, so two transactions cannot both chain to one row.
    PERFORM pg_advisory_xact_lock(hashtextextended('audit_log:' || NEW.transaction_id, 0));
    SELECT row_hash INTO NEW.prev_hash FROM audit_log
        WHERE transaction_id = NEW.transaction_id ORDER BY id DESC LIMIT 1;
    NEW.prev_hash := coalesce(NEW.prev_hash, ''::bytea);
    NEW.row_hash := sha256(NEW.prev_hash || convert_to(audit_log_chain_text(NEW), 'UTF8'));
    RETURN NEW;
END;
$$;

-- The rows written before this migration join the chain too (as the owner, triggers paused).
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete;
DO $$
DECLARE
    r audit_log;
    last_txn text := NULL;
    last_hash bytea := ''::bytea;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY transaction_id, id LOOP
        IF last_txn IS DISTINCT FROM r.transaction_id THEN
            last_hash := ''::bytea;
            last_txn := r.transaction_id;
        END IF;
        UPDATE audit_log SET prev_hash = last_hash,
            row_hash = sha256(last_hash || convert_to(audit_log_chain_text(r), 'UTF8'))
            WHERE id = r.id RETURNING row_hash INTO last_hash;
    END LOOP;
END;
$$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete;
ALTER TABLE audit_log ALTER COLUMN prev_hash SET NOT NULL;
ALTER TABLE audit_log ALTER COLUMN row_hash SET NOT NULL;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
