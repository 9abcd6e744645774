"""The acquiring bank: the resilient client the processor calls, and the simulator tests call it on.

- `client`: `HttpBankClient`, the `BankClient` port's adapter: one shared aiohttp session.
- `retry`: the attempts through the breaker, same idempotency key, capped backoff with jitter.
- `calls`: one attempt of each call, its answer parsed into a `BankResult` / `BankInquiry`.
- `resolution`: an unknown outcome settled by status inquiry.
- `transport`: one HTTP exchange, and the table mapping its failures onto the error tree.
- `breaker`: the circuit breaker around every bank call (aiobreaker state, our own half-open gate).
- `wire`: the JSON contract both sides speak.
- `simulator`: `payment-service banksim`, the acquirer with test cards, a ledger and fault modes.

The port, its values and its errors are the core's (`core.ports`, `core.banking`,
`core.errors`). See docs/bank.md.
"""
