"""The documentation site builds with `mkdocs build --strict` (broken links and pages left out
of the navigation fail it), and its commands page lists every `cinerec` command."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    built = subprocess.run([str(mkdocs), "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT,
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "runbooks" / "index.html").is_file()


def test_the_commands_page_names_every_command():
    from cinerec.cli.main import build_parser

    page = (ROOT / "docs" / "commands.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    missing = [name for name in commands if f"`cinerec {name}" not in page]
    assert not missing, f"docs/commands.md lacks {missing}"
