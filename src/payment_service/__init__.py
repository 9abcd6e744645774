"""Kafka-first payment processing service."""

__version__ = "0.1.0"
