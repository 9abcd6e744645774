"""Card data: masked types, encryption (AES-256-GCM with key ids), fingerprints."""
