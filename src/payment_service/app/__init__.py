"""Composition roots and entry points: the CLI, one `build_*()` per process; imported by nothing."""
