"""`pip install .` (not editable) into a clean venv installs one package, ``cinerec``; the command
and its settings defaults work from the installed package, away from the source tree. The
dependencies come from the project's venv on PYTHONPATH (the project itself does not: its
editable hook lives in a .pth file, which PYTHONPATH entries never run), so the test installs only the project."""

import os
import site
import subprocess
import venv
from pathlib import Path

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
    where = subprocess.run([str(python), "-c", "import cinerec, cinerec.search.indices as i; print(cinerec.__file__); "
                            "print(i.mapping('ratings')['mappings']['dynamic'])"], capture_output=True, text=True,
                           cwd=tmp_path, env=env)
    assert where.returncode == 0 and str(tmp_path / "clean") in where.stdout and "strict" in where.stdout, where
    installed = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True).stdout.strip()
    ours = {p.name for p in Path(installed).iterdir()} - {p.name for p in Path(installed).glob("pip*")} \
        - {p.name for p in Path(installed).glob("_distutils_hack")} - {p.name for p in Path(installed).glob("*.pth")} \
        - {p.name for p in Path(installed).glob("setuptools*")} - {"pkg_resources", "__pycache__"}
    assert {n for n in ours if not n.endswith(".dist-info")} == {"cinerec"}, ours
    helped = subprocess.run([cinerec, "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "privacy" in helped.stdout
