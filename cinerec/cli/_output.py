"""Printing for the CLI: JSON to stdout, progress bars to a terminal only, help of setting overrides."""

from __future__ import annotations

import json
import sys
from typing import Any

from tqdm import tqdm

from cinerec.core.settings import env_var


def env_help(text: str, section: str, key: str) -> str:
    """Help text of an option that overrides a setting."""
    return f"{text} (default: setting {section}.{key}, env {env_var(section, key)})"


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=_jsonable))


def progress_bar(total: int | None, desc: str) -> tqdm:
    """A tqdm bar on stderr, silent when stderr is not a terminal (CI, pipes)."""
    return tqdm(total=total, desc=desc, unit="ev", file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy and pandas scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
