"""`cinerec`: the one entry point. Loads settings once, dispatches, maps errors to exit codes.

Exit codes: 0 ok, 1 failed (bad data, integrity errors, download), 2 bad usage or settings,
3 a service is unavailable, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from cinerec.batch.download import DownloadError
from cinerec.batch.movielens import DataError
from cinerec.core.errors import ServiceError
from cinerec.core.settings import Settings, SettingsError, load_settings
from cinerec.platform.registry import PromotionRefused

from . import bench, canary, data, models, privacy, run

EXIT_FAILED, EXIT_USAGE, EXIT_SERVICE, EXIT_INTERRUPTED = 1, 2, 3, 130
FAILURES = (DataError, DownloadError, FileNotFoundError, ValueError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cinerec", description="Cinerec: a real-time streaming movie recommender.",
        epilog="Every setting in config/cinerec.toml can be overridden with an environment "
               "variable CINEREC_<SECTION>__<KEY>; `cinerec config show` prints the effective "
               "values.")
    parser.add_argument("--config", type=Path, metavar="TOML",
                        help="settings file (env CINEREC_CONFIG; default config/cinerec.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (run, data, models, canary, privacy, bench):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings: Settings = load_settings(args.config)
        return int(args.run(settings, args) or 0)
    except SettingsError as err:
        return _fail(EXIT_USAGE, err)
    except (ServiceError, KafkaException) as err:
        return _fail(EXIT_SERVICE, err)
    except (PromotionRefused, LookupError) as err:
        return _fail(EXIT_FAILED, err)
    except FAILURES as err:
        return _fail(EXIT_FAILED, err)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except Exception as err:  # noqa: BLE001 - one line, not a traceback; CINEREC_DEBUG=1 shows it
        if os.environ.get("CINEREC_DEBUG"):
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        return _fail(EXIT_FAILED, f"{type(err).__name__}: {first} (set CINEREC_DEBUG=1 for the traceback)")


def _fail(code: int, err: Any) -> int:
    print(f"cinerec: error: {err}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
