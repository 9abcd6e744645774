"""Ports: whether one is free, who holds it, and a clear error naming the option to change it."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from .config import HOST, Config, StackError
from .procs import cmdline


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def port_owner(port: int) -> str:
    """'pid N (command)' of whoever listens on the port, when /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    if not inodes:
        return "another process"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    cmd = " ".join(cmdline(int(entry.name)))[:120]
                    return f"pid {entry.name} ({cmd})"
    return "another process"


def check_ports_free(cfg: Config, name: str, ports: dict[str, int]) -> None:
    for label, port in ports.items():
        if port_in_use(port):
            option = f"--{label.replace('_', '-')}-port"
            raise StackError(
                f"cannot start {name}: port {port} ({label}) on {HOST} is already in use by "
                f"{port_owner(port)}",
                f"stop that process, or choose another port: python3 scripts/stack.py start "
                f"{option} <port>  (with make: make up STACK_ARGS='{option} <port>')",
            )
