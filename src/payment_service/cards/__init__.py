"""Card custody: HPKE envelopes to the processor's keys, key storage, fingerprints, the vault."""
