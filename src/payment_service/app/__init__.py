"""Wiring, configuration, the pure payment core and the command line."""
