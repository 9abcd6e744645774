"""PostgreSQL (Debian's package): the cluster in the state folder, its server, role and database.

`initdb` refuses to run as root, so as root the cluster belongs to the `postgres` system user and
every folder above it must be traversable by that user. The roles `payment_owner` (owns the
database and migrates it; password in `owner.env`) and `payment_user` (the runtime role; password
in `local.env`) and the database `payment_db` are created idempotently. A database that an older
stack made `payment_user` own is handed to `payment_owner` (REASSIGN OWNED).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .config import HOST, PG_DB, PG_OWNER, PG_USER, Config, StackError, pg_data, say, tail
from .env import ensure_owner_env
from .ports import check_ports_free
from .probes import postgres_healthy, wait_healthy
from .procs import launch, recorded_pid
from .system import pg_bin_dir


def pg_socket_dir(cfg: Config) -> Path:
    """Inside the state folder unless that path is too long for a unix socket (107 bytes)."""
    inside = cfg.dir / "postgres" / "run"
    if len(str(inside / ".s.PGSQL.65535.lock")) <= 100:
        return inside
    digest = hashlib.sha256(str(cfg.dir).encode()).hexdigest()[:10]
    return Path("/tmp") / f"payment-stack-pg-{digest}"  # noqa: S108 - socket path length


def pg_os_user() -> str | None:
    """initdb refuses root: as root the cluster belongs to the `postgres` system user."""
    return "postgres" if os.geteuid() == 0 else None


def pg_superuser() -> str:
    return pg_os_user() or pwd.getpwuid(os.geteuid()).pw_name


def chown_for_pg(path: Path) -> None:
    user = pg_os_user()
    if user:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def ensure_traversable(path: Path) -> None:
    """The postgres user must be able to reach its data dir: add o+x to our own parents."""
    if pg_os_user() is None:
        return
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_mode & 0o001:
            continue
        if st.st_uid == os.geteuid():
            say(f"making {parent} traversable (o+x) for the postgres user")
            parent.chmod(st.st_mode | 0o001)
        else:
            raise StackError(
                f"the postgres user cannot reach {path}: {parent} is not traversable",
                "use a state folder under a traversable path: --dir /some/where",
            )


def pg_init(cfg: Config, bindir: Path) -> None:
    data = pg_data(cfg)
    if (data / "PG_VERSION").exists():
        return
    base = data.parent
    base.mkdir(parents=True, exist_ok=True)
    ensure_traversable(base)
    tmp = base / "data.initdb"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    chown_for_pg(tmp)
    say(f"initialising a PostgreSQL cluster in {data}…")
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(tmp),
        "-U",
        pg_superuser(),
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
    ]
    with open(cfg.log("postgres"), "ab") as log:
        rc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=base,
            user=pg_os_user(),
            group=pg_os_user(),
            extra_groups=[] if pg_os_user() else None,
        ).returncode
    if rc != 0:
        raise StackError(
            f"initdb failed (exit {rc}); last log lines:\n{tail(cfg.log('postgres'))}",
            f"full log: {cfg.log('postgres')}",
        )
    tmp.rename(data)


def start_postgres(cfg: Config, env_values: dict[str, str]) -> None:
    bindir = pg_bin_dir()
    if bindir is None:
        raise StackError("PostgreSQL is not installed", "run: python3 scripts/stack.py install")
    pid = recorded_pid(cfg, "postgres")
    if pid is None:
        check_ports_free(cfg, "postgres", {"postgres": cfg.ports["postgres"]})
        pg_init(cfg, bindir)
        sock = pg_socket_dir(cfg)
        sock.mkdir(parents=True, exist_ok=True, mode=0o700)
        chown_for_pg(sock)
        say(f"starting postgres on {HOST}:{cfg.ports['postgres']}…")
        argv = [
            str(bindir / "postgres"),
            "-D",
            str(pg_data(cfg)),
            "-p",
            str(cfg.ports["postgres"]),
            "-k",
            str(sock),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "max_connections=200",
        ]
        proc = launch(cfg, "postgres", argv, cwd=pg_data(cfg).parent, user=pg_os_user())
        wait_healthy(cfg, "postgres", proc, proc.pid)
    elif not postgres_healthy(cfg):
        wait_healthy(cfg, "postgres", None, pid)
    else:
        say(f"postgres already running (pid {pid}) on {HOST}:{cfg.ports['postgres']}")
    owner_password = ensure_owner_env(cfg)["POSTGRES_OWNER_PASSWORD"]
    pg_ensure_database(cfg, bindir, env_values["POSTGRES_PASSWORD"], owner_password)


def pg_ensure_database(cfg: Config, bindir: Path, password: str, owner_password: str) -> None:
    """Roles `payment_owner` and `payment_user`, database `payment_db` owned by the first."""
    quoted, owner_quoted = (p.replace("'", "''") for p in (password, owner_password))
    # Identifiers are constants and the passwords are quoted: no injection.
    roles = f"""
SELECT 'CREATE ROLE {PG_USER} LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PG_USER}')\\gexec
ALTER ROLE {PG_USER} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD '{quoted}';
SELECT 'CREATE ROLE {PG_OWNER} LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PG_OWNER}')\\gexec
ALTER ROLE {PG_OWNER} WITH LOGIN PASSWORD '{owner_quoted}';
SELECT 'CREATE DATABASE {PG_DB} OWNER {PG_OWNER}'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{PG_DB}')\\gexec
"""  # noqa: S608
    # In the database itself: whatever an older stack made the runtime role own moves to the
    # owner (the migrator then grants the runtime role back what it may do).
    handover = f"REASSIGN OWNED BY {PG_USER} TO {PG_OWNER};\n"
    _psql(cfg, bindir, "postgres", roles)
    _psql(cfg, bindir, PG_DB, handover)


def _psql(cfg: Config, bindir: Path, database: str, sql: str) -> None:
    cmd = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    cmd += ["-h", str(pg_socket_dir(cfg)), "-p", str(cfg.ports["postgres"])]
    cmd += ["-U", pg_superuser(), "-d", database, "-f", "-"]
    result = subprocess.run(
        cmd,
        input=sql.encode(),
        capture_output=True,
        cwd="/",
        user=pg_os_user(),
        group=pg_os_user(),
        extra_groups=[] if pg_os_user() else None,
        timeout=60,
    )
    if result.returncode != 0:
        raise StackError(
            f"could not create the role/database: {result.stderr.decode(errors='replace')}",
            f"postgres log: {cfg.log('postgres')}",
        )
