"""The acquiring bank: the resilient client the processor calls, and the simulator tests call it on.

- `client`: `HttpBankClient`, one shared aiohttp session, retries with the same idempotency key,
  outcome-unknown resolution by status inquiry.
- `transport`: one HTTP exchange, and the table mapping its failures onto the error tree.
- `retry`: backoff timing (capped exponential, full jitter).
- `breaker`: the circuit breaker around every bank call (aiobreaker state, our own half-open gate).
- `errors`: the error tree (`BankNotSent`, `BankOutcomeUnknown`, `BankRejected`).
- `models`: results and inquiries, the `BankClient` port.
- `wire`: the JSON contract both sides speak.
- `simulator`: `payment-service banksim`, the acquirer with test cards, a ledger and fault modes.

See docs/bank.md.
"""
