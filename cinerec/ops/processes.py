"""The processes of a running Cinerec, told apart by their command lines, and what they cost (Linux /proc).

    role             command line holds
    kafka            kafka.Kafka                              (the broker)
    elasticsearch    org.elasticsearch.bootstrap.Elasticsearch
    spark_jvm        org.apache.spark.deploy.SparkSubmit      (the streaming job's driver JVM, local executors)
    spark_executor   CoarseGrainedExecutorBackend             (an executor on a standalone cluster's worker)
    spark_daemons    deploy.master.Master / deploy.worker.Worker  (the standalone cluster's own JVMs)
    python_workers   pyspark.daemon / pyspark.worker          (Spark's Python workers: validation, state)
    stream_driver    cinerec.cli.main stream / cinerec stream         (the job's Python driver: fold-in, writes)
    api              gunicorn / cinerec.cli.main serve
``Usage`` samples them: CPU seconds (user + system) spent between two samples and the peak resident
memory of each role, so a benchmark can say what 1,000 events cost each process.
``record`` writes a child's pid file (pid and command line), ``stop_leftovers`` stops what such
files name after their parent was killed without stopping them (SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ROLES = {"kafka": ("kafka.Kafka",), "elasticsearch": ("org.elasticsearch.bootstrap.Elasticsearch",),
         "spark_jvm": ("org.apache.spark.deploy.SparkSubmit",),
         "spark_executor": ("CoarseGrainedExecutorBackend",),
         "spark_daemons": ("org.apache.spark.deploy.master.Master", "org.apache.spark.deploy.worker.Worker"),
         "python_workers": ("pyspark.daemon", "pyspark.worker", "pyspark/daemon.py", "pyspark/worker.py"),
         "stream_driver": ("cinerec.cli.main stream", "cinerec stream"), "api": ("gunicorn", "cinerec.cli.main serve")}
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def role_of(cmdline: str) -> str | None:
    """The role of a process from its command line (arguments joined by spaces), None if not ours."""
    for role, marks in ROLES.items():
        if any(mark in cmdline for mark in marks):
            return role
    return None


def snapshot() -> dict[int, tuple[str, float, int]]:
    """{pid: (role, CPU seconds so far, resident bytes)} of every process with a role."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            role = role_of(cmdline)
            if role is None:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            rss = int((proc / "statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue                                  # gone in between
        found[int(proc.name)] = (role, (int(fields[11]) + int(fields[12])) / _TICKS, rss)
    return found


class Usage:
    """CPU seconds per role since the first sample, and the peak resident memory per role (the sum
    over its processes at a sample). A process that appears later counts from its first sample."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.peak_rss: dict[str, int] = {}
        self.sample()

    def sample(self) -> None:
        rss: dict[str, int] = {}
        for pid, (role, cpu, resident) in snapshot().items():
            self.first.setdefault(pid, cpu)
            self.last[pid] = (role, cpu)
            rss[role] = rss.get(role, 0) + resident
        for role, total in rss.items():
            self.peak_rss[role] = max(self.peak_rss.get(role, 0), total)

    def cpu_seconds(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for pid, (role, cpu) in self.last.items():
            totals[role] = totals.get(role, 0.0) + cpu - self.first[pid]
        return {role: round(seconds, 2) for role, seconds in sorted(totals.items())}

    def peak_mb(self) -> dict[str, float]:
        return {role: round(total / 2**20, 1) for role, total in sorted(self.peak_rss.items())}


def stop_child(child: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the child, which stops what it runs (Spark's JVM included) and exits; SIGKILL to
    its whole process group after ``grace_s``. Signalling the group at once would kill the JVM
    under the driver's feet and fill the log with its stack traces."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(child.pid, signal.SIGKILL)             # whatever is left of the group
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


def record(pid: int, command: Sequence[object], pid_file: Path) -> None:
    """``pid`` and the command line it runs, in ``pid_file``: after its parent is killed with SIGKILL
    the next run finds it there, and tells it from a process that got the pid since (``running``)."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(json.dumps({"pid": pid, "command": [str(arg) for arg in command]}))


def running(pid_file: Path) -> int | None:
    """The pid ``pid_file`` records if that process still runs the recorded command line (its
    /proc/<pid>/cmdline ends with it: a script's interpreter comes first), else None."""
    try:
        recorded = json.loads(pid_file.read_text())
        pid, command = int(recorded["pid"]), recorded["command"]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if command and cmdline[-len(command):] == command else None


def stop_leftovers(pid_dir: Path, grace_s: float = 30.0) -> list[str]:
    """Stops each process a pid file of ``pid_dir`` names and that still runs its command line
    (SIGTERM, then SIGKILL to its process group after ``grace_s``, as ``stop_child``), removes the
    files; 'name (pid N)' of each stopped."""
    files = sorted(pid_dir.glob("*.pid"))
    found = {file: pid for file in files if (pid := running(file)) is not None}
    for pid in found.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(running(file) for file in found) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in found.values():
        try:
            os.killpg(pid, signal.SIGKILL)               # whatever is left of its group
        except (ProcessLookupError, PermissionError):
            pass
    while any(running(file) for file in found) and time.monotonic() < deadline + 5:
        time.sleep(0.1)                                  # gone, so the ports they held are free
    for file in files:
        file.unlink(missing_ok=True)
    return [f"{file.stem} (pid {pid})" for file, pid in found.items()]
