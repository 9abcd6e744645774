"""The acquiring-bank simulator behind `payment-service banksim`, the oracle for "charged once".

It implements the acquirer API (authorize, capture, refund, status inquiry) with Stripe's test
cards, idempotency keys, amount rules, a ledger of every executed operation, configurable latency
and fault modes. Modules: `issuer` (card verdicts), `books` (amount rules, idempotent execution),
`ledger` (its records), `faults` (fault rules, latency), `state` (one simulator's state), `api`
and `admin` (handlers), `control` (a client for the `/sim` endpoints). The process is built by
`app/banksim.py`. docs/bank.md is the user's guide.
"""
