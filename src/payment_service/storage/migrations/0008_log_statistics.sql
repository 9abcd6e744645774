-- 0008: cheaper planner statistics on the two append-only logs (issue 14; docs/benchmark.md,
-- eighth wave).
-- ANALYZE reads a sample of 300 rows per unit of the largest statistics target among a table's
-- columns: 30,000 rows at the default of 100, whatever changed. On audit_log and events of
-- 200,000-435,000 rows that took about a second of a core each, and autoanalyze of them came with
-- the benchmark's worst stalls on two cores. Their readers go through indexes by key, by
-- transaction and by commit order (storage/audit_feed.py, storage/events.py, the merchant's list
-- of events), where the plans need little more than row counts: at 10 (3,000 rows) each pass
-- measured 6-8 times cheaper. `transactions` keeps the default: its list queries filter on
-- merchant and status, where the estimates matter.
-- A column added to either table later starts at the default (100), which would bring the full
-- sample back: give it STATISTICS 10 in the same migration.
ALTER TABLE audit_log
    ALTER COLUMN id SET STATISTICS 10,
    ALTER COLUMN event_id SET STATISTICS 10,
    ALTER COLUMN transaction_id SET STATISTICS 10,
    ALTER COLUMN refund_id SET STATISTICS 10,
    ALTER COLUMN merchant_id SET STATISTICS 10,
    ALTER COLUMN action SET STATISTICS 10,
    ALTER COLUMN from_status SET STATISTICS 10,
    ALTER COLUMN to_status SET STATISTICS 10,
    ALTER COLUMN amount_minor SET STATISTICS 10,
    ALTER COLUMN currency SET STATISTICS 10,
    ALTER COLUMN actor SET STATISTICS 10,
    ALTER COLUMN correlation_id SET STATISTICS 10,
    ALTER COLUMN details SET STATISTICS 10,
    ALTER COLUMN created_at SET STATISTICS 10,
    ALTER COLUMN prev_hash SET STATISTICS 10,
    ALTER COLUMN row_hash SET STATISTICS 10,
    ALTER COLUMN xid SET STATISTICS 10;

ALTER TABLE events
    ALTER COLUMN event_id SET STATISTICS 10,
    ALTER COLUMN merchant_id SET STATISTICS 10,
    ALTER COLUMN type SET STATISTICS 10,
    ALTER COLUMN object_id SET STATISTICS 10,
    ALTER COLUMN data SET STATISTICS 10,
    ALTER COLUMN created_at SET STATISTICS 10;
