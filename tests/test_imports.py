"""The import rules the package docstrings state, checked on the source (every import, also the
ones inside functions): no package imports one above it, ``core`` stays free of the engines, and
the CLI only parses arguments and prints (it imports no engine: the packages below assemble)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "batch", "cli", "core", "ops", "search", "simulator", "streaming")
# package -> the project packages it may import (cli may import all of them)
ALLOWED = {"core": set(), "search": {"core"}, "simulator": {"core"}, "batch": {"core", "search"},
           "api": {"core", "search"}, "streaming": {"core", "search", "batch"},
           "ops": {"core", "search", "simulator", "batch", "streaming", "api"}, "cli": set(PACKAGES)}
ENGINES = ("pyspark", "elasticsearch", "mlflow", "flask", "confluent_kafka", "dagster", "gunicorn")
KAFKA_IN_CORE = {"core/topics.py", "core/privacy.py"}       # the project's topics, publishing privacy events
# the streaming job itself does not use batch; its entry point loads the champion and its training
# data (registry, Spark session, preprocessing), and the quality evaluation retrains
STREAMING_USES_BATCH = {"streaming/app.py", "streaming/quality.py"}


def imports() -> dict[str, set[str]]:
    """{file relative to the root: top-level names of every module it imports}."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
            found[path.relative_to(ROOT).as_posix()] = names
    return found


def test_no_package_imports_one_it_may_not():
    wrong = {f: sorted((names & set(PACKAGES)) - ALLOWED[f.split("/")[0]] - {f.split("/")[0]})
             for f, names in imports().items()}
    assert not {f: w for f, w in wrong.items() if w}


def test_streaming_uses_batch_only_to_load_the_champion_and_for_the_quality_evaluation():
    assert {f for f, names in imports().items() if f.startswith("streaming/") and "batch" in names} \
        <= STREAMING_USES_BATCH


def test_core_never_imports_an_engine():
    for f, names in imports().items():
        if f.startswith("core/"):
            engines = names & set(ENGINES) - ({"confluent_kafka"} if f in KAFKA_IN_CORE else set())
            assert not engines, f"{f} imports {engines}"


def test_the_cli_imports_no_engine():
    """Kafka's exception type is the one exception: ``cli/main.py`` maps it to an exit code."""
    for f, names in imports().items():
        if f.startswith("cli/"):
            engines = names & set(ENGINES) - ({"confluent_kafka"} if f == "cli/main.py" else set())
            assert not engines, f"{f} imports {engines}"
