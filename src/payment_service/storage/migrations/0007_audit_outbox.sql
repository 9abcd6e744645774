-- 0007: audit events published from the audit rows (issue 12, item 4), outbox-style.
-- Privileges are granted by the migrator after every run (storage/roles.py): the runtime role
-- gets read/write on audit_relay_cursor like any table, and still only INSERT/SELECT on audit_log.

-- The transaction that wrote each row. A reader that takes only rows of transactions older than
-- its snapshot's xmin (none of them can still commit) in (xid, id) order never skips a row that
-- committed late: ids are taken at insert, so a lower id can commit after a higher one, but a
-- row's xid is below xmin only once its transaction has ended. The default covers every writer
-- (all inserts go through storage/audit.py:audit_insert). Rows written before this migration
-- get xid 0, which no transaction has: they sort together, by id, before every later row, and
-- they mark the upgrade (the earlier version published them itself, under other event ids).
-- The constant default adds the column without rewriting the table; the writer's xid is the
-- default from then on.
-- Not in the hash chain (audit_log_chain_text names its columns): existing chains still verify.
ALTER TABLE audit_log ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE audit_log ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX audit_log_commit_order ON audit_log (xid, id);

-- How far each reader of the commit order has published (the relay: 'audit_relay').
CREATE TABLE audit_relay_cursor (
    name               text        PRIMARY KEY,
    xid                xid8        NOT NULL,
    id                 bigint      NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The webhook dispatcher reads the same commit order (storage/events.py): its cursor gets the
-- position's xid. NULL: a cursor saved by id alone, converted on the next start.
ALTER TABLE webhook_cursor ADD COLUMN xid xid8 NULL;
