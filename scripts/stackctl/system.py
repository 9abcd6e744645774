"""What the stack needs from the machine: PostgreSQL, Redis, Java, Maven, make, and installing them.

Missing Debian packages are installed with apt-get (as root, or through passwordless sudo), with
Debian's service auto-start held off; `install()` then fetches the Kafka jars (`kafka_jars`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .config import Config, StackError, say
from .kafka_jars import ensure_kafka_libs


def pg_bin_dir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def java_bin() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def missing_packages() -> list[str]:
    missing = []
    if pg_bin_dir() is None:
        missing.append("postgresql")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if java_bin() is None:
        missing.append("openjdk-17-jre-headless")
    if not shutil.which("mvn"):
        missing.append("maven")
    if not shutil.which("make"):
        missing.append("make")
    return missing


def apt_install(packages: Sequence[str]) -> None:
    """apt-get install, with Debian's service auto-start held off (they would take our ports)."""
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"]).returncode == 0:
            prefix = ["sudo", "-n"]
        else:
            retry = f"sudo apt-get update && sudo apt-get install -y {' '.join(packages)}"
            raise StackError(f"missing system packages: {', '.join(packages)}", f"run: {retry}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = False
    if os.geteuid() == 0 and not policy.exists():
        # Debian's convention: exit 101 means "do not start services from maintainer scripts".
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        made_policy = True
    try:
        for cmd in (
            [*prefix, "apt-get", "update", "-q"],
            [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            say("running: " + " ".join(cmd))
            if subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL).returncode != 0:
                raise StackError(
                    f"`{' '.join(cmd)}` failed",
                    "check the network access to Debian's package mirror, then retry: "
                    "python3 scripts/stack.py install",
                )
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)


def install(cfg: Config | None = None) -> Path:
    missing = missing_packages()
    if missing:
        say(f"installing missing system packages: {', '.join(missing)}…")
        apt_install(missing)
        still = missing_packages()
        if still:
            raise StackError(f"still missing after apt-get install: {', '.join(still)}")
    return ensure_kafka_libs()
