"""The processes this package starts: launching them, knowing them again, stopping exactly them.

Each process runs in its own session with its pid in `pids/<name>.pid`; a pid counts as ours only
while `/proc/<pid>/cmdline` (and for the apps `PAYMENT_STACK_DIR` in its environment) still shows
the command started from this state folder, so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from .config import APPS, Config, kind_of, pg_data, say, write_atomic

# PostgreSQL's fast shutdown is SIGINT (SIGTERM would wait for every client to disconnect).
STOP_SIGNAL = {"postgres": signal.SIGINT}


def proc_state(pid: int) -> str | None:
    """The process state letter, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def proc_pgid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[2])


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own child if it has exited
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def expected_process(cfg: Config, name: str, pid: int) -> bool:
    """Does `pid` still run the command this script started for `name` in this state folder?"""
    argv = cmdline(pid)
    if not argv:
        return False
    if name == "kafka":
        return "kafka.Kafka" in argv and str(cfg.dir / "kafka" / "server.properties") in argv
    if name == "postgres":
        return Path(argv[0]).name in ("postgres", "postmaster") and str(pg_data(cfg)) in argv
    if name == "redis":
        conf = str(cfg.dir / "redis" / "redis.conf")
        return Path(argv[0]).name == "redis-server" and conf in argv
    if kind_of(name) in APPS:
        return (
            any(Path(a).name == "payment-service" for a in argv)
            and name in argv  # the supervisor's argument: the instance's own name
            and environ(pid).get("PAYMENT_STACK_DIR") == str(cfg.dir)
        )
    return False


def recorded_pid(cfg: Config, name: str) -> int | None:
    """The pid recorded for `name` if that process is still ours; stale records are removed."""
    path = cfg.pidfile(name)
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if alive(pid) and expected_process(cfg, name, pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def start_marker(argv: list[str]) -> str:
    """The line written before a process's own: JSON, like every line of the service's logs."""
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info",
        "process": "stack",
        "logger": "stack.py",
        "message": f"started: {shlex.join(argv)}",
    }
    return json.dumps(entry) + "\n"


def launch(
    cfg: Config,
    name: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    log_path = cfg.log(name)
    with open(log_path, "ab") as log:
        log.write(start_marker(argv).encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd or cfg.dir,
            env=env,
            start_new_session=True,  # own process group: `stop` can clean up its children
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    write_atomic(cfg.pidfile(name), f"{proc.pid}\n")
    return proc


def group_members(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and proc_pgid(int(entry.name)) == pgid:
            pids.append(int(entry.name))
    return pids


def stop_processes(cfg: Config, names: Sequence[str], timeout: Callable[[str], float]) -> None:
    """SIGTERM (SIGINT for PostgreSQL) the recorded pids, wait, then SIGKILL what is left."""
    running = {}
    for name in names:
        pid = recorded_pid(cfg, name)
        if pid is None:
            continue
        say(f"stopping {name} (pid {pid})…")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, STOP_SIGNAL.get(name, signal.SIGTERM))
        running[name] = pid
    deadline = {n: time.monotonic() + timeout(n) for n in running}
    while running:
        for name, pid in list(running.items()):
            if not alive(pid):
                del running[name]
                kill_group_leftovers(pid)
                cfg.pidfile(name).unlink(missing_ok=True)
                say(f"{name} stopped")
            elif time.monotonic() > deadline[name]:
                say(f"{name} (pid {pid}) did not exit in {timeout(name):.0f}s; sending SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    if proc_pgid(pid) == pid:
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
                deadline[name] = time.monotonic() + 10
        time.sleep(0.1)


def kill_group_leftovers(leader: int) -> None:
    """Children left in the (dead) leader's process group: ours by construction."""
    for pid in group_members(leader):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
