"""The pure payment core: states, money, errors, records, rules, ids and the ports.

No I/O, and no import of any other subpackage of ours: every edge depends on this, never the
other way round.
"""
