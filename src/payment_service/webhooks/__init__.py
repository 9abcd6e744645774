"""Webhooks: signing, the SSRF guard, signing secrets at rest, and the dispatcher's logic."""
