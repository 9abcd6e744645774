"""The developer tools outside the service: make targets, deps-check's verdicts, the DogStatsD
capture behind `make metrics`, the Docker stack's secrets file."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
from scripts import deps_check, dockerstack, statsd_capture

from tests.fixtures.stack import PROJECT

pytestmark = pytest.mark.unit

MAKEFILE = (PROJECT / "Makefile").read_text()
# Every target of the seed README's Makefile, under the same name.
SEED_TARGETS = {
    "help", "dev", "dev-setup", "run-local", "test", "full-test", "lint", "format",
    "docker-up", "docker-down", "docker-logs", "docker-shell", "test-api", "test-unit",
    "test-integration", "docker-psql", "db-seed", "status", "metrics", "prod-check",
    "deploy-staging", "deploy-prod", "deps-check", "debug", "env-check", "clean-all",
}  # fmt: skip


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z0-9][a-zA-Z0-9_-]*):(?!=)", MAKEFILE, re.MULTILINE))


def test_every_seed_target_exists_and_help_lists_every_target() -> None:
    targets = make_targets()
    assert targets >= SEED_TARGETS, sorted(SEED_TARGETS - targets)
    documented = set(re.findall(r"^([a-zA-Z0-9][a-zA-Z0-9_-]*):.*?## ", MAKEFILE, re.MULTILINE))
    assert documented == targets, f"no `## text` (so not in make help): {targets - documented}"
    listed = subprocess.run(
        ["make", "-s", "help"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout
    for target in targets:
        assert re.search(rf"^  {re.escape(target)}\s", listed, re.MULTILINE), target


def test_deploy_targets_say_what_they_need_and_fail() -> None:
    done = subprocess.run(
        ["make", "-s", "deploy-staging"], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    for need in ("registry", "credentials", "cluster", "nothing was deployed"):
        assert need in done.stdout, need


def test_lock_pins_markers_and_installed_comparison(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "aiohttp==3.14.5 \\\n    --hash=sha256:00\n    # via x\n"
        "async-timeout==5.0.1 ; python_full_version < '3.0' \\\n    --hash=sha256:11\n"
        "Typing_Extensions==4.16.0 ; python_version >= '3.8' \\\n"
    )
    pins = deps_check.locked_pins(lock)
    assert pins == {"aiohttp": "3.14.5", "typing-extensions": "4.16.0"}
    have = {"aiohttp": "3.14.4", "payment-service": "0.1.0", "six": "1.0"}
    assert deps_check.compare(pins, have) == [
        "aiohttp is 3.14.4, the lock says 3.14.5",
        "typing-extensions==4.16.0 is locked but not installed",
        "six==1.0 is installed but not in the lock",
    ]
    assert deps_check.compare(pins, {**pins, "payment-service": "0.1.0"}) == []


def test_audit_that_looked_nothing_up_is_not_a_pass() -> None:
    skipped = {"name": "aiohttp", "skip_reason": "Dependency not found on PyPI"}
    clean = {"name": "yarl", "version": "1.0", "vulns": []}
    bad = {"name": "idna", "version": "3.0", "vulns": [{"id": "PYSEC-1"}]}
    assert deps_check.audit_verdict({"dependencies": [skipped, clean]})[0] == "not checked"
    assert deps_check.audit_verdict({"dependencies": []})[0] == "not checked"
    assert deps_check.audit_verdict({"dependencies": [clean]})[0] == "pass"
    verdict, detail = deps_check.audit_verdict({"dependencies": [clean, bad, skipped]})
    assert verdict == "fail"
    assert "idna 3.0" in detail


def test_dogstatsd_lines_are_parsed_and_aggregated() -> None:
    data = (
        b"payments.processed:1|c|#currency:USD,outcome:captured\n"
        b"payments.processed:2|c|@0.5|#outcome:captured,currency:USD\n"
        b"bank.latency_ms:10:20:30|d\n"
        b"api.inflight:4|g\napi.inflight:2|g\n"
        b"merchants:m1|s\nmerchants:m2|s\nmerchants:m1|s\n"
        b"_sc|bank|0\n_e{3,2}:abc|de\nbroken\nnot:a|number|x\nx:y|c\n"
    )
    samples, others = statsd_capture.parse_datagram(data)
    assert others == 2
    series = statsd_capture.aggregate(samples)
    counter = series[("payments.processed", "c", ("currency:USD", "outcome:captured"))]
    assert counter.total == 5  # 1, then 2 sampled at 0.5
    assert series[("api.inflight", "g", ())].last == 2
    assert series[("bank.latency_ms", "d", ())].values == [10, 20, 30]
    assert series[("merchants", "s", ())].members == {"m1", "m2"}
    lines = "\n".join(statsd_capture.report(series, seconds=5))
    assert "count 5 (1.00/s)" in lines
    assert "distribution n=3 mean=20 p50=20 p95=30 max=30" in lines
    assert "set, 2 distinct" in lines


def test_docker_secrets_are_written_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / ".docker.env"
    first = dockerstack.ensure_env_file(path, old=tmp_path / "none", check_volume=False)
    assert set(first) == set(dockerstack.SECRETS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = dockerstack.ensure_env_file(path, old=tmp_path / "none", check_volume=False)
    assert again == first
    env = dockerstack.host_env(first)
    assert env["REDIS_URL"] == f"redis://:{first['REDIS_PASSWORD']}@127.0.0.1:6379/0"
    assert f":{first['POSTGRES_PASSWORD']}@127.0.0.1:5432/" in env["DATABASE_URL"]
    assert env["PAYMENT_API_URL"] == "http://127.0.0.1:8000"


def test_docker_secrets_of_an_older_layout_are_reused(tmp_path: Path) -> None:
    old = tmp_path / "docker.env"
    old.write_text("POSTGRES_PASSWORD=pw\nSECRET_KEY=sk\nENCRYPTION_KEY=k1:abc\n")
    values = dockerstack.ensure_env_file(tmp_path / ".docker.env", old=old, check_volume=False)
    assert (values["POSTGRES_PASSWORD"], values["SECRET_KEY"]) == ("pw", "sk")
    assert values["REDIS_PASSWORD"]  # added, the rest kept
