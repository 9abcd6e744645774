"""Redis (Debian's package): a generated `redis.conf` without persistence, and its server.

Redis holds only short-lived data (security codes for minutes, locks, rate limits), so nothing is
kept on disk by design.
"""

from __future__ import annotations

import shutil

from .config import HOST, Config, StackError, say
from .ports import check_ports_free
from .probes import redis_healthy, wait_healthy
from .procs import launch, recorded_pid


def start_redis(cfg: Config) -> None:
    exe = shutil.which("redis-server")
    if exe is None:
        raise StackError("redis-server is not installed", "run: python3 scripts/stack.py install")
    pid = recorded_pid(cfg, "redis")
    if pid is not None:
        if redis_healthy(cfg):
            say(f"redis already running (pid {pid}) on {HOST}:{cfg.ports['redis']}")
        else:
            wait_healthy(cfg, "redis", None, pid)
        return
    check_ports_free(cfg, "redis", {"redis": cfg.ports["redis"]})
    rdir = cfg.dir / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    conf = rdir / "redis.conf"
    conf.write_text(
        "# Written by scripts/stack.py: local development Redis, no disk persistence.\n"
        f"bind {HOST}\n"
        f"port {cfg.ports['redis']}\n"
        "protected-mode yes\n"
        "daemonize no\n"
        "supervised no\n"
        "set-proc-title no\n"
        f'pidfile "{rdir / "redis.pid"}"\n'
        f'dir "{rdir}"\n'
        'logfile ""\n'
        'save ""\n'
        "appendonly no\n"
    )
    say(f"starting redis on {HOST}:{cfg.ports['redis']}…")
    proc = launch(cfg, "redis", [exe, str(conf)], cwd=rdir)
    wait_healthy(cfg, "redis", proc, proc.pid)
