"""Operations plumbing for every process: JSON logging, metrics and spans, fault points, Redis."""
