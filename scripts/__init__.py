"""The project's own tools, run from a checkout with the system's python3 (not installed).

A regular package so that tests and mypy import `scripts.stackctl` under one name.
"""
