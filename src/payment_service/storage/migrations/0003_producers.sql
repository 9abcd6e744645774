-- 0003: the producer registry (issue 11): who may put commands on Kafka, for which merchants
-- and command types, with which Ed25519 public key; every change in `producer_audit`; the actor
-- of every audit row.

-- One row per registered producer. The API (producer `api`) is not here: its public key is in
-- the processor's settings and it may act for every merchant (it authenticates them itself).
-- A row never changes except to be revoked, and a revoked name is never registered again: a
-- command refused once is refused for good, whatever is replayed later (docs/kafka.md).
CREATE TABLE producers (
    name               text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    merchants          text[]      NOT NULL CHECK (cardinality(merchants) >= 1),
    commands           text[]      NOT NULL
        CHECK (cardinality(commands) >= 1 AND commands <@ ARRAY['payment', 'refund']::text[]),
    public_key         text        NOT NULL,
    created_by         text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz NULL,
    revoked_by         text        NULL,
    CONSTRAINT producers_revoked_by_with_revoked_at CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

-- A change to a producer is only ever its revocation, once.
CREATE FUNCTION producers_only_revoke() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
       OR (NEW.name, NEW.merchants, NEW.commands, NEW.public_key, NEW.created_by, NEW.created_at)
          IS DISTINCT FROM
          (OLD.name, OLD.merchants, OLD.commands, OLD.public_key, OLD.created_by, OLD.created_at)
    THEN
        RAISE EXCEPTION 'producers: only a revocation may change a row (% refused)', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER producers_change_is_revocation
    BEFORE UPDATE OR DELETE ON producers
    FOR EACH ROW EXECUTE FUNCTION producers_only_revoke();

-- Every change to the registry, insert-only like audit_log.
CREATE TABLE producer_audit (
    id                 bigserial   PRIMARY KEY,
    event_id           uuid        NOT NULL UNIQUE,
    producer           text        NOT NULL,
    action             text        NOT NULL,
    actor              text        NOT NULL,
    details            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX producer_audit_producer ON producer_audit (producer, id);

CREATE FUNCTION producer_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'producer_audit is insert-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER producer_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON producer_audit
    FOR EACH ROW EXECUTE FUNCTION producer_audit_refuse_change();
CREATE TRIGGER producer_audit_no_truncate
    BEFORE TRUNCATE ON producer_audit
    FOR EACH STATEMENT EXECUTE FUNCTION producer_audit_refuse_change();

-- Who asked (PCI DSS 10.2.1, 10.2.2): `api:<api key id>` or `producer:<name>`. A payment and a
-- refund keep who asked for them; the audit rows of their later transitions name the same actor
-- (the reconciler finishes what that actor asked for). NULL only on rows older than this.
ALTER TABLE transactions ADD COLUMN requested_by text NULL;
ALTER TABLE refunds ADD COLUMN requested_by text NULL;
ALTER TABLE audit_log ADD COLUMN actor text NULL;
