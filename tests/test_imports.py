"""The floors of ``cinerec.FLOORS``, checked on the source (every import, also the ones inside
functions): a module imports its own package and the floors beneath it only; ``core`` imports no
engine; every client of an outside system is made on the platform floor; nothing but the web app
imports ``cinerec.api.web``; the CLI only parses arguments and prints."""

import ast
from pathlib import Path

from cinerec import FLOORS, floor_of

PACKAGE = Path(__file__).resolve().parent.parent / "cinerec"
ENGINES = ("pyspark", "elasticsearch", "mlflow", "flask", "confluent_kafka", "dagster", "gunicorn", "sqlalchemy")
# constructors of outside systems' clients (a call of the name, or SparkSession.builder)
CLIENTS = {"Producer", "Consumer", "AdminClient", "Elasticsearch", "MlflowClient", "create_engine", "builder"}


def modules() -> dict[str, ast.Module]:
    """{file relative to cinerec/: its syntax tree}."""
    return {path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}


def imported(tree: ast.Module) -> set[str]:
    """Every module the file imports, absolute (relative imports resolved to ``cinerec.…`` roughly:
    they stay inside their own package, which the floors allow)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def package_of(file: str) -> str | None:
    return file.split("/")[0] if "/" in file else None


def test_every_package_stands_on_a_floor():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} - {"config"}
    assert packages == {name for floor, _ in FLOORS for name in floor}


def test_a_module_imports_only_its_own_package_and_the_floors_below():
    wrong = {}
    for file, tree in modules().items():
        own = package_of(file)
        if own is None:
            continue
        above = {name for name in imported(tree) if name.startswith("cinerec.") and name.split(".")[1] != own
                 and name.split(".")[1] != "config" and floor_of(name.split(".")[1]) >= floor_of(own)}
        if above:
            wrong[file] = sorted(above)
    assert not wrong


def test_core_never_imports_an_engine():
    for file, tree in modules().items():
        if file.startswith("core/"):
            engines = {name.split(".")[0] for name in imported(tree)} & set(ENGINES)
            assert not engines, f"{file} imports {engines}"


def test_clients_of_outside_systems_are_made_on_the_platform_floor_only():
    made = {}
    for file, tree in modules().items():
        if file.startswith("platform/"):
            continue
        calls = {getattr(node.func, "id", None) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        builders = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "builder"}
        if (calls | builders) & CLIENTS:
            made[file] = sorted((calls | builders) & CLIENTS)
    assert not made


def test_nothing_but_the_web_app_imports_it():
    outside = {file for file, tree in modules().items()
               if not file.startswith("api/") and any(n.startswith("cinerec.api.web") for n in imported(tree))}
    assert not outside


def test_the_cli_imports_no_engine():
    """Kafka's exception type is the one exception: ``cli/main.py`` maps it to an exit code."""
    for file, tree in modules().items():
        if file.startswith("cli/"):
            engines = {name.split(".")[0] for name in imported(tree)} & set(ENGINES)
            engines -= {"confluent_kafka"} if file == "cli/main.py" else set()
            assert not engines, f"{file} imports {engines}"


def test_the_checks_see_a_wrong_import():
    """The checks above would catch a breach (they are not vacuous)."""
    tree = ast.parse("from cinerec.batch.training import train\nfrom confluent_kafka import Producer\nProducer({})")
    assert "cinerec.batch.training" in imported(tree) and floor_of("batch") >= floor_of("streaming")
    assert {getattr(n.func, "id", None) for n in ast.walk(tree) if isinstance(n, ast.Call)} & CLIENTS
