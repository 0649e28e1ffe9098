"""mkdocs hook (``hooks:`` in mkdocs.yml): each notebook in this folder becomes a page
``notebooks/<name>.md`` of the site, converted by nbconvert's Markdown exporter, its plots as PNG files
beside it.

The page shows the executed copy that ``notebooks/run.py`` (``make notebooks``) wrote under
``var/notebooks/`` when that copy ran the notebook's current sources; otherwise the stored notebook,
without outputs, with a line saying how to get them. The build itself executes nothing, so it stays fast.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXECUTED = HERE.parent / "var" / "notebooks"


def render(path: Path, executed_dir: Path = EXECUTED) -> tuple[str, dict[str, bytes]]:
    """(Markdown of the page, {image file name: bytes}) for the stored notebook at ``path``."""
    import nbformat
    from nbconvert import MarkdownExporter

    nb = nbformat.read(path, as_version=4)
    copy = Path(executed_dir) / path.name
    ran = nbformat.read(copy, as_version=4) if copy.is_file() else None
    if ran is not None and ran.metadata.get("cinerec", {}).get("source_sha256") == _runner().source_digest(nb):
        info = ran.metadata["cinerec"]
        nb, note = ran, (f"*Executed {info['executed_at']} in {info['seconds']:.0f} s by `make notebooks`; "
                         f"the notebook is `notebooks/{path.name}` in the repository.*")
    else:
        note = (f"*Shown as stored, not executed: `make notebooks` runs it (on ml-latest-small when it is "
                f"beside the repository, or on `CINEREC_NOTEBOOK_DATA`) and the next `mkdocs build` shows "
                f"its outputs. The notebook is `notebooks/{path.name}` in the repository.*")
    body, resources = MarkdownExporter().from_notebook_node(
        nb, resources={"output_files_dir": f"{path.stem}_files", "unique_key": path.stem})
    images = {Path(name).name: data for name, data in resources.get("outputs", {}).items()}
    title, _, rest = body.lstrip().partition("\n")
    return f"{title}\n\n{note}\n{rest}", images


def _runner():
    """notebooks/run.py, beside this file (a hook's folder is not importable once mkdocs has loaded it)."""
    name = "cinerec_notebooks_run"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "run.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    for path in sorted(HERE.glob("*.ipynb")):
        markdown, images = render(path)
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=markdown))
        for name, data in images.items():
            files.append(File.generated(config, f"notebooks/{path.stem}_files/{name}", content=data))
    return files
