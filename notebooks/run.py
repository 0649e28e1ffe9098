"""Execute the notebooks in this folder with the project's own Python (nbclient + ipykernel, no Jupyter
server), or strip their outputs.

    .venv/bin/python notebooks/run.py                  # every notebook -> var/notebooks/<name>.ipynb
    .venv/bin/python notebooks/run.py 01-exploration   # one of them
    .venv/bin/python notebooks/run.py --strip          # clear outputs of the stored notebooks in place

The data directory comes from ``CINEREC_NOTEBOOK_DATA`` (default ``../shared/data/movielens/ml-latest-small``
beside the repository when it exists, else the synthetic world of the settings); ``CINEREC_*`` settings
variables apply as for the ``cinerec`` command. The stored notebooks have no outputs; the executed copies
carry them, with the digest of the sources they ran, which the documentation hook
(``notebooks/mkdocs_hook.py``) checks before rendering a copy instead of the stored notebook.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXECUTED = ROOT / "var" / "notebooks"
KERNEL_NAME = "python3"


def stored() -> list[Path]:
    """The stored notebooks, in reading order (their names start with a number)."""
    return sorted(HERE.glob("*.ipynb"))


def source_digest(nb) -> str:
    """What a notebook runs: the type and source of each cell (outputs and metadata left out)."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        digest.update(f"{cell.cell_type}\0{cell.source}\0".encode())
    return digest.hexdigest()


def strip(nb):
    """``nb`` without outputs, execution counts or execution metadata (how notebooks are stored)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("cinerec", None)
    return nb


def is_stripped(nb) -> bool:
    return all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in nb.cells if cell.cell_type == "code") and "cinerec" not in nb.metadata


def _kernel_manager_class():
    """An asynchronous kernel manager whose ``python3`` kernel is always this interpreter (the
    project's venv), whatever kernels the machine has registered, reached over Unix sockets."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class VenvSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="Python 3 (cinerec)", language="python", resource_dir=str(HERE))

    class VenvKernel(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _venv_specs(self):
            return VenvSpecs(parent=self)

        @default("transport")
        def _local_sockets(self):
            return "ipc"  # Unix sockets: nothing listens on the network

    return VenvKernel


def execute(path: Path, out_dir: Path = EXECUTED, *, env: dict[str, str] | None = None,
            timeout: int = 1800) -> Path:
    """Runs the notebook at ``path`` in a fresh kernel (working directory: the repository) and writes the
    executed copy to ``out_dir``; a cell that raises stops it (``nbclient.exceptions.CellExecutionError``,
    the copy is still written, with the error in its outputs)."""
    import nbformat
    from nbclient import NotebookClient

    nb = strip(nbformat.read(path, as_version=4))
    digest = source_digest(nb)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME, kernel_manager_class=_kernel_manager_class(),
                            resources={"metadata": {"path": str(ROOT)}})
    started = time.monotonic()
    try:
        client.execute(env={**os.environ, **(env or {})})
    finally:
        nb.metadata["cinerec"] = {"source_sha256": digest,
                                  "executed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "seconds": round(time.monotonic() - started, 1)}
        nbformat.write(nb, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (file names without .ipynb; default: all)")
    parser.add_argument("--out", type=Path, default=EXECUTED, help=f"where the executed copies go ({EXECUTED})")
    parser.add_argument("--strip", action="store_true", help="clear the outputs of the stored notebooks and exit")
    args = parser.parse_args(argv)
    import nbformat

    chosen = [p for p in stored() if not args.names or p.stem in args.names]
    unknown = set(args.names) - {p.stem for p in chosen}
    if unknown:
        parser.error(f"no notebook named {', '.join(sorted(unknown))}; have {', '.join(p.stem for p in stored())}")
    if args.strip:
        for path in chosen:
            nb = nbformat.read(path, as_version=4)
            if not is_stripped(nb):
                nbformat.write(strip(nb), path)
                print(f"stripped {path.relative_to(ROOT)}")
        return 0
    from nbclient.exceptions import CellExecutionError

    for path in chosen:
        started = time.monotonic()
        try:
            target = execute(path, args.out)
        except CellExecutionError as err:
            print(f"{err}\n{path.name} failed; the executed copy, with the error, is {args.out / path.name}",
                  file=sys.stderr)
            return 1
        print(f"{path.name}: {time.monotonic() - started:.0f} s -> {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
