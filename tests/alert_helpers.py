"""Debian's Alertmanager for a test: started on free ports with a configuration ``write_configs``
produced, alerts posted to its API as Prometheus would, stopped afterwards."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from cinerec.ops.services._process import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")


@contextlib.contextmanager
def alertmanager(config: Path, work: Path) -> Iterator[tuple[int, Path]]:
    """(web port, log file) of an Alertmanager running ``config`` without clustering
    (an empty ``--cluster.listen-address``)."""
    port, log = free_port(), work / "alertmanager.log"
    manager = subprocess.Popen([ALERTMANAGER, f"--config.file={config}", f"--storage.path={work / 'am-data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        yield port, log
    finally:
        manager.terminate()
        manager.wait(10)


def post_alerts(port: int, alerts: list[dict], log: Path, *, within_s: float = 30) -> None:
    """``POST /api/v2/alerts`` once Alertmanager answers (its log in the failure otherwise)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v2/alerts", data=json.dumps(alerts).encode(),
                headers={"Content-Type": "application/json"}), timeout=2)
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
