"""What `cinerec demo` settles before it starts anything: its feed's rate, what an earlier demo
killed with SIGKILL left running, ports held by other processes (real processes and sockets)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cinerec.cli.main import build_parser
from cinerec.core.errors import ServiceError
from cinerec.core.settings import load_settings
from cinerec.ops import demo
from cinerec.ops import services as svc
from cinerec.ops.processes import record, stop_leftovers
from cinerec.ops.serve import serve
from cinerec.ops.services._process import free_port, port_holder


def test_the_feed_rate_is_the_simulator_rate_setting_when_the_environment_sets_it_else_the_demos():
    default, given = build_parser().parse_args(["demo"]).rate, build_parser().parse_args(["demo", "--rate", "30"]).rate
    env = {"CINEREC_SIMULATOR__RATE": "50"}
    assert demo.feed_rate(load_settings(env={}), default, environ={}) == demo.DEMO_RATE == 200
    assert demo.feed_rate(load_settings(env=env), default, environ=env) == 50
    assert demo.feed_rate(load_settings(env=env), given, environ=env) == 30


def started(command: list[str], **popen) -> subprocess.Popen:
    """``command`` running, its command line readable (it is empty for a moment while exec loads it)."""
    child = subprocess.Popen(command, **popen)
    while not Path(f"/proc/{child.pid}/cmdline").read_bytes():
        time.sleep(0.01)
    return child


def test_leftovers_are_stopped_in_one_line_but_not_a_recycled_pid_nor_a_demo_that_runs(tmp_path, capsys):
    leftover = started(["sleep", "300"], start_new_session=True)              # an API its demo left
    record(leftover.pid, leftover.args, tmp_path / "serve.pid")
    recycled = started(["sleep", "300"])
    record(recycled.pid, ["prometheus", "--config.file=x"], tmp_path / "prometheus.pid")   # the pid runs another
    try:
        demo._stop_leftovers(tmp_path)
        assert capsys.readouterr().err == (f"cinerec demo: stopped what an earlier demo left running: "
                                           f"serve (pid {leftover.pid})\n")
        assert leftover.wait(timeout=5) == -signal.SIGTERM and recycled.poll() is None
        assert [f.name for f in tmp_path.glob("*.pid")] == ["demo.pid"]              # this demo's own
        with pytest.raises(ServiceError, match=f"a demo already runs from this data dir \\(pid {os.getpid()}\\)"):
            demo._stop_leftovers(tmp_path)
        (tmp_path / "demo.pid").unlink()
        assert stop_leftovers(tmp_path) == [] and recycled.poll() is None
    finally:
        recycled.kill()
        recycled.wait()


def test_a_port_held_by_another_process_is_one_line_naming_it_and_its_holder(base_settings, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import socket, time; s = socket.socket(); "
                               "s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True); "
                               "time.sleep(300)"], stdout=subprocess.PIPE, text=True)
    port = int(holder.stdout.readline())
    held_by = f"is held by pid {holder.pid} \\({sys.executable} -c import socket"
    try:
        assert port_holder(port).startswith(f"pid {holder.pid} ({sys.executable} -c import socket")
        assert port_holder(free_port()) is None
        with pytest.raises(ServiceError, match=f"^port {port}, which the API \\(api.port\\) needs, {held_by}"):
            serve(base_settings.replace(api__port=port))
        with pytest.raises(ServiceError, match=f"^port {port}, which the API \\(api.port\\) needs, {held_by}"):
            demo._check_ports(base_settings.replace(api__port=port), loop=False)
        with pytest.raises(ServiceError, match=f"^port {port}, which Kafka needs, {held_by}"):
            svc.up(base_settings.replace(services__data_dir=str(tmp_path),
                                         kafka__bootstrap_servers=f"127.0.0.1:{port}"))
    finally:
        holder.kill()
        holder.wait()
