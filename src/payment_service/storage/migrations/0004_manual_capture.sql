-- 0004: manual capture and void (issue 16), and the index behind the payment lists.

ALTER TABLE transactions DROP CONSTRAINT transactions_status_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_status_check CHECK (status IN (
    'processing', 'authorized', 'unknown', 'unknown_capture', 'requires_capture', 'capturing',
    'canceling', 'canceled', 'captured', 'failed', 'partially_refunded', 'refunded'));

-- 'automatic' captures in one bank call (a sale); 'manual' authorizes and waits.
ALTER TABLE transactions ADD COLUMN capture_method text NOT NULL DEFAULT 'automatic'
    CHECK (capture_method IN ('automatic', 'manual'));
-- When the bank approved the hold: the validity window of a manual capture starts here.
ALTER TABLE transactions ADD COLUMN authorized_at timestamptz NULL;
-- The amount of a capture once requested (status capturing): a redelivery or the reconciler
-- repeats exactly this capture under the same bank key.
ALTER TABLE transactions ADD COLUMN capture_requested_minor bigint NULL
    CONSTRAINT transactions_capture_requested_le_amount
    CHECK (capture_requested_minor > 0 AND capture_requested_minor <= amount_minor);
-- Why the hold was voided: requested_by_customer, duplicate, fraudulent, abandoned, expired.
ALTER TABLE transactions ADD COLUMN cancellation_reason text NULL;
-- The reconciler's give-up path checked the bank for a late hold (and voided it) at this time.
ALTER TABLE transactions ADD COLUMN hold_checked_at timestamptz NULL;

-- Lists: newest first within a merchant, ties broken by id (the keyset of the cursors).
-- Replaces (merchant_id, created_at), which it extends.
CREATE INDEX transactions_merchant_created_id
    ON transactions (merchant_id, created_at DESC, transaction_id DESC);
DROP INDEX transactions_merchant_created;
-- With a status filter: a status rare for a merchant would otherwise read all its rows (at 1 M
-- payments, 100,000 rows and 430 ms for a merchant with no payment in that status; bench/lists.py).
CREATE INDEX transactions_merchant_status_created
    ON transactions (merchant_id, status, created_at DESC, transaction_id DESC);
-- The reconciler's sweeps: holds past their validity window, and give-ups to check for a hold.
CREATE INDEX transactions_holds ON transactions (authorized_at)
    WHERE status = 'requires_capture';
CREATE INDEX transactions_unchecked_give_ups ON transactions (updated_at)
    WHERE failure_code = 'not_processed_by_bank' AND hold_checked_at IS NULL;

ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_kind_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_kind_check
    CHECK (kind IN ('payment', 'refund', 'payment_method', 'capture', 'cancel'));
