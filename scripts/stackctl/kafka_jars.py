"""The Kafka jars: org.apache.kafka:kafka_2.13 and its dependencies, fetched once with Maven.

`stack/kafka/pom.xml` names them (plus the log4j2 runtime); they land in a cache shared by every
clone and state folder, keyed by the Kafka version and a hash of the pom.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from .config import PROJECT, StackError, say, tail

KAFKA_POM = PROJECT / "stack" / "kafka" / "pom.xml"


def cache_root() -> Path:
    if os.environ.get("PAYMENT_SERVICE_CACHE"):
        return Path(os.environ["PAYMENT_SERVICE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "payment-service"


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text())
    if not match:
        raise StackError(f"no <kafka.version> in {KAFKA_POM}")
    return match.group(1).strip()


def kafka_libs_dir() -> Path:
    digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()[:10]
    return cache_root() / f"kafka-{kafka_version()}-{digest}" / "libs"


def ensure_kafka_libs() -> Path:
    libs = kafka_libs_dir()
    marker = libs.parent / "complete"
    if marker.exists() and libs.is_dir():
        return libs
    if not shutil.which("mvn"):
        raise StackError("Maven (mvn) is not installed", "run: python3 scripts/stack.py install")
    libs.parent.mkdir(parents=True, exist_ok=True)
    tmp = libs.parent / f"libs.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    mvn_log = libs.parent / "mvn.log"
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(KAFKA_POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
    ]
    say(
        f"downloading Apache Kafka {kafka_version()} jars from Maven Central into {libs} "
        "(first time only)…"
    )
    started = time.monotonic()
    with open(mvn_log, "wb") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=libs.parent).returncode
    if rc != 0 or not list(tmp.glob("kafka_2.13-*.jar")):
        shutil.rmtree(tmp, ignore_errors=True)
        raise StackError(
            f"Maven could not fetch the Kafka jars (exit {rc})\n{tail(mvn_log, 15)}",
            f"full log: {mvn_log}\nretry: {shlex.join(cmd[:-1])} -DoutputDirectory={libs}\n"
            "or simply run again: python3 scripts/stack.py install",
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    jars = len(list(libs.glob("*.jar")))
    marker.write_text(f"{jars} jars in {time.monotonic() - started:.1f}s\n")
    say(f"fetched {jars} jars in {time.monotonic() - started:.1f}s")
    return libs
