"""`pip install .` (not editable) into a clean venv: the command and its settings defaults work
from the installed package, away from the source tree. The dependencies come from the project's
venv on PYTHONPATH (the project itself does not: its editable hook lives in a .pth file, which
PYTHONPATH entries never run), so the test installs only the project."""

import os
import site
import subprocess
import venv

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(600)
def test_the_installed_package_runs_without_the_source_tree(tmp_path):
    venv.create(tmp_path / "clean", with_pip=True)
    python = tmp_path / "clean" / "bin" / "python"
    built = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", ROOT],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(site.getsitepackages()), "HOME": str(tmp_path)}
    cinerec = str(tmp_path / "clean" / "bin" / "cinerec")
    shown = subprocess.run([cinerec, "config", "show", "--json"], capture_output=True, text=True, cwd=tmp_path,
                           env=env)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert '"ratings_topic": "ratings"' in shown.stdout
    where = subprocess.run([str(python), "-c", "import core, search.indices as i; print(core.__file__); "
                            "print(i.mapping('ratings')['mappings']['dynamic'])"], capture_output=True, text=True,
                           cwd=tmp_path, env=env)
    assert where.returncode == 0 and str(tmp_path / "clean") in where.stdout and "strict" in where.stdout, where
    helped = subprocess.run([cinerec, "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "privacy" in helped.stdout
