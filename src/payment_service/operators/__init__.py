"""Operators' tools (`payment-service ops ...`): verify, inspect, replay, DLQ and offsets.

An edge like `storage` or `streams`: it reads PostgreSQL with its own read-only queries, Kafka
as the operators' principal `ops`, and the bank through the `BankClient` port (status inquiry)
or the simulator's ledger; its decisions are the core's (`core.decisions`, `core.states`).
"""
