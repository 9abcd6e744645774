"""`make deps-check`: are the installed packages the locked ones, consistent, and free of known
vulnerabilities? Run with the venv's interpreter (it reads that environment).

Three checks, each reported on its own line:

1. every pin of requirements.lock that applies to this interpreter (its markers evaluated) is
   installed at exactly that version, and nothing else is installed besides the project itself;
2. `pip check` (every installed package's requirements are met);
3. `pip-audit` over the environment. pip-audit exits 0 even when it could not look a package up
   (no route to its vulnerability service, as on this project's machines): its JSON report is
   read instead, and any package it skipped makes the audit "NOT CHECKED", never "passed".

Exit status: 0 all passed, 1 something failed, 2 nothing failed but the audit was not checked
(`--strict` turns that into 1).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

PROJECT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
SELF = "payment-service"
AUDIT_TIMEOUT_SECONDS = 300


def locked_pins(lock: Path) -> dict[str, str]:
    """The pins of `lock` whose environment markers hold for this interpreter."""
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if not match:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def installed() -> dict[str, str]:
    """Every distribution in this environment, by canonical name."""
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def compare(pins: dict[str, str], have: dict[str, str]) -> list[str]:
    """One line per difference between the lock and the environment; none when they agree."""
    problems = []
    for name, version in sorted(pins.items()):
        if name not in have:
            problems.append(f"{name}=={version} is locked but not installed")
        elif have[name] != version:
            problems.append(f"{name} is {have[name]}, the lock says {version}")
    extra = sorted(set(have) - set(pins) - {SELF})
    problems += [f"{name}=={have[name]} is installed but not in the lock" for name in extra]
    return problems


def audit_verdict(report: dict[str, object]) -> tuple[str, str]:
    """('pass' | 'fail' | 'not checked', detail) from pip-audit's JSON report."""
    deps = report.get("dependencies")
    if not isinstance(deps, list) or not deps:
        return "not checked", "pip-audit reported no packages at all"
    skipped = [d for d in deps if isinstance(d, dict) and d.get("skip_reason")]
    vulnerable = [d for d in deps if isinstance(d, dict) and d.get("vulns")]
    if vulnerable:
        names = ", ".join(f"{d['name']} {d.get('version', '')}".strip() for d in vulnerable)
        return "fail", f"known vulnerabilities in {len(vulnerable)} package(s): {names}"
    if skipped:
        first = skipped[0].get("skip_reason")
        return "not checked", (
            f"pip-audit could not look up {len(skipped)} of {len(deps)} packages "
            f"(first: {first}); its vulnerability service is probably unreachable"
        )
    return "pass", f"no known vulnerabilities in {len(deps)} packages"


def run_audit() -> tuple[str, str]:
    """Run pip-audit on this environment and judge its report (see `audit_verdict`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off"]
        command += ["--skip-editable", "--format", "json", "--output", str(out)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=AUDIT_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            return "not checked", f"pip-audit gave no answer within {AUDIT_TIMEOUT_SECONDS}s"
        except OSError as exc:
            return "not checked", f"pip-audit could not run: {exc}"
        if not out.exists():
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return "not checked", f"pip-audit exited {done.returncode}: {detail[0]}"
        report = json.loads(out.read_text(encoding="utf-8"))
    return audit_verdict(report if isinstance(report, dict) else {})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--lock", type=Path, default=PROJECT / "requirements.lock")
    p.add_argument("--no-audit", action="store_true", help="skip pip-audit")
    p.add_argument("--strict", action="store_true", help="an audit not checked is a failure")
    args = p.parse_args(argv)

    failed = False
    problems = compare(locked_pins(args.lock), installed())
    if problems:
        failed = True
        print(f"pins:        FAIL ({len(problems)} differences from {args.lock.name})")
        for line in problems:
            print(f"  - {line}")
        print("  fix: make install (or rm -rf .venv && make install)")
    else:
        print(f"pins:        PASS (the environment is exactly {args.lock.name})")

    check = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    if check.returncode == 0:
        print("pip check:   PASS")
    else:
        failed = True
        print("pip check:   FAIL")
        print("\n".join(f"  {line}" for line in check.stdout.strip().splitlines()))

    verdict = "not checked"
    if args.no_audit:
        print("audit:       NOT CHECKED (--no-audit)")
    else:
        verdict, detail = run_audit()
        print(f"audit:       {verdict.upper()} ({detail})")
        failed = failed or verdict == "fail"
    if failed:
        return 1
    if verdict == "not checked":
        return 1 if args.strict else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
