"""Background JVMs of the embedded engines: pid files, start, stop, resident memory; who holds a port."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from cinerec.core.errors import ServiceError


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's (Elasticsearch runs as its own user)
    return pid if not _is_zombie(pid) else None


def stop(pid_file: Path, timeout_s: float = 30.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout_s``; True if a process was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while read_pid(pid_file) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if read_pid(pid_file) is not None:
        os.kill(pid, signal.SIGKILL)
        while read_pid(pid_file) is not None:
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True


def resident_mib(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB (VmRSS), None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (FileNotFoundError, TypeError, ValueError):
        return None
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def require_free_port(port: int, what: str) -> None:
    """One line naming the port and the process that holds it, before ``what`` fails to bind it
    somewhere in a log (or retries binding it forever, as gunicorn does)."""
    if (holder := port_holder(port)) is not None:
        raise ServiceError(f"port {port}, which {what} needs, is held by {holder}: stop it or choose another port")


def port_holder(port: int) -> str | None:
    """'pid N (command line)' of the process listening on TCP ``port`` (any address), 'a process of
    another user' when its descriptors cannot be read, None when nothing listens there."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes for fd in fd_dir.iterdir()):
                command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f"pid {fd_dir.parent.name} ({' '.join(command.split())[:200]})"
        except OSError:
            continue                                  # gone in between, or not ours to read
    return "a process of another user"


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes of the TCP listeners on ``port`` (/proc/net/tcp and tcp6: state 0A is LISTEN)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return False
