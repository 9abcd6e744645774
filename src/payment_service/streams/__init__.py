"""Quix Streams processors: consume payment commands, call the bank, persist, emit results."""
