"""How long the disk takes to make a small write durable, beside a run: is a stall the disk's?

    python -m bench.fsync_probe .stack/postgres 110    # beside `make bench`, in another shell

Appends 512 bytes and `fdatasync`s them every 50 ms in the directory given (PostgreSQL's WAL
waits on the same kind of call at every commit), prints each sync of 50 ms or more with its
UTC time, and at the end the median, p99 and longest. Lining its times up with the processor's
stalls (bench/pauses.py) says whether the disk was slow when the commands waited.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

SLOW_MS = 50.0
EVERY_S = 0.05


def probe(directory: Path, seconds: float) -> list[float]:
    path = directory / "fsync-probe.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    took: list[float] = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            os.write(fd, b"x" * 512)
            started = time.perf_counter()
            os.fdatasync(fd)
            ms = (time.perf_counter() - started) * 1000
            took.append(ms)
            if ms >= SLOW_MS:
                print(f"{dt.datetime.now(dt.UTC):%H:%M:%S.%f} {ms:.0f} ms", flush=True)
            time.sleep(EVERY_S)
    finally:
        os.close(fd)
        path.unlink()
    return sorted(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("seconds", type=float)
    args = parser.parse_args()
    took = probe(args.directory, args.seconds)
    if took:
        p50, p99 = took[len(took) // 2], took[int(len(took) * 0.99)]
        print(f"{len(took)} syncs: p50 {p50:.1f} ms, p99 {p99:.1f} ms, longest {took[-1]:.1f} ms")


if __name__ == "__main__":
    main()
