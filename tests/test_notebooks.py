"""The notebooks in notebooks/ run from top to bottom, on generated MovieLens data with defects planted
in it, in a kernel of the project's venv (nbclient + ipykernel); any cell that raises fails the test.
They are stored without outputs, and the documentation hook renders an executed copy with its plots."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cinerec.simulator.world import generate

ROOT = Path(__file__).resolve().parent.parent


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


run = _module("cinerec_notebooks_run", ROOT / "notebooks" / "run.py")
hook = _module("cinerec_notebooks_mkdocs_hook", ROOT / "notebooks" / "mkdocs_hook.py")

# Rows the integrity check reports as errors and the Spark cleaner drops, by the cleaner's reason.
PLANTED = {"missing_values": 3, "out_of_range": 3, "unknown_movie": 2, "duplicates": 4}


def synthetic_release(directory: Path) -> Path:
    """A MovieLens directory in the ml-csv layout, large enough for every plot and model (300 users,
    400 films, about 9,000 ratings from the synthetic world), with the defects of ``PLANTED`` and a
    film without a year or genres appended to its files."""
    world = generate(seed=7, users=300, movies=400, mean_ratings_per_user=30, min_ratings_per_user=10,
                     latent_dim=8)
    world.save(directory)
    ratings = world.ratings
    some = ratings.sample(PLANTED["duplicates"], random_state=1)
    later = [f"{u},{m},{5.5 - r},{ts // 1000 + 3600}"  # the same pair an hour later, another rating
             for u, m, r, ts in some[["user_id", "movie_id", "rating", "ts"]].itertuples(index=False)]
    first = ratings.iloc[0]
    user, ts = int(first["user_id"]), int(first["ts"]) // 1000
    defects = [f"{user},{int(m)},,{ts}" for m in ratings["movie_id"].unique()[:PLANTED["missing_values"]]]
    defects += [f"{user},{m},{r},{ts}" for m, r in ((1, 7.0), (2, 0.0), (3, 3.3))]        # off the scale
    defects += [f"{user},{m},4.0,{ts}" for m in (990_001, 990_002)]                       # not in the catalogue
    with open(directory / "ratings.csv", "a") as fh:
        fh.write("\n".join(later + defects) + "\n")
    with open(directory / "movies.csv", "a") as fh:
        fh.write('990100,"An Untitled Film",(no genres listed)\n')
    return directory


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every notebook executed once on the synthetic release: {name: executed notebook}, and seconds."""
    base = tmp_path_factory.mktemp("notebooks")
    data = synthetic_release(base / "ml-synthetic")
    env = {"CINEREC_NOTEBOOK_DATA": str(data), "CINEREC_SERVICES__DATA_DIR": str(base / "var"),
           "PYSPARK_PYTHON": sys.executable, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    started = time.monotonic()
    done = {path.stem: nbformat.read(run.execute(path, base / "executed", env=env, timeout=300), as_version=4)
            for path in run.stored()}
    return done, time.monotonic() - started, base


def _outputs(nb, kind: str) -> list[str]:
    return [out.get("text", "") if kind == "stream" else out.get("data", {})
            for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == kind]


def test_the_notebooks_are_stored_without_outputs():
    notebooks = run.stored()
    assert len(notebooks) >= 3
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert run.is_stripped(nb), f"{path.name} has outputs: .venv/bin/python notebooks/run.py --strip"
        assert nb.metadata["kernelspec"]["name"] == run.KERNEL_NAME


@pytest.mark.spark
@pytest.mark.timeout(300)
def test_every_notebook_runs_on_generated_data_with_plots(executed):
    done, seconds, _ = executed
    assert set(done) == {p.stem for p in run.stored()}
    for name, nb in done.items():
        assert not _outputs(nb, "error"), name
        images = [d for d in _outputs(nb, "display_data") if "image/png" in d]
        assert images, f"{name} drew no plot"
        assert nb.metadata["cinerec"]["source_sha256"] == run.source_digest(nbformat.read(
            ROOT / "notebooks" / f"{name}.ipynb", as_version=4))
    assert seconds < 120, f"the notebooks took {seconds:.0f} s"


@pytest.mark.spark
def test_the_preprocessing_notebook_shows_each_planted_defect_dropped(executed):
    done, _, base = executed
    printed = "".join(_outputs(done["02-preprocessing"], "stream"))
    assert "errors" in printed and "features in" in printed
    report = next((base / "var" / "features").glob("*/report.json"))
    dropped = pd.read_json(report, typ="series")["dropped"]
    assert dropped == PLANTED


@pytest.mark.spark
def test_the_documentation_renders_an_executed_notebook_with_its_plots(executed):
    done, _, base = executed
    source = ROOT / "notebooks" / "03-model-comparison.ipynb"
    markdown, images = hook.render(source, base / "executed")
    assert images and all(name.endswith(".png") for name in images)
    assert all(f"03-model-comparison_files/{name}" in markdown for name in images)
    assert "ndcg" in markdown and "*Executed " in markdown
    stale, none = hook.render(source, base / "nowhere")
    assert not none and "not executed" in stale


@pytest.mark.spark
def test_stripping_an_executed_notebook_gives_back_what_is_stored(executed):
    done, _, _ = executed
    nb = done["01-exploration"]
    assert not run.is_stripped(nb)
    stored = nbformat.read(ROOT / "notebooks" / "01-exploration.ipynb", as_version=4)
    assert run.is_stripped(run.strip(nb)) and run.source_digest(nb) == run.source_digest(stored)
