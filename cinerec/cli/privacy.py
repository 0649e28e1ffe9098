"""`cinerec privacy …`: an operator's side of people's data rights (``core.privacy`` has the rules,
``api.web.privacy`` the operations the web app shares).

    export USER_ID     everything held about a user, as JSON
    erase USER_ID      erase a user everywhere (the streaming job finishes: state, film statistics)
    audit USER_ID      search every store for the user id (and --email); per store what it found
    status             erased users still inside the champion model (retrain to forget them)
    catalog            the data catalog as Markdown (docs/data-catalog.md)
"""

from __future__ import annotations

import argparse
import sys

from cinerec.core.settings import Settings
from cinerec.ops.privacy import audit, champion_users

from ._output import print_json


def export_command(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.api.privacy import export
    from cinerec.platform.accounts import Accounts
    from cinerec.platform.elasticsearch import connect

    print_json(export(settings, connect(settings.elasticsearch), Accounts(settings), args.user_id))
    return 0


def erase_command(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.api.privacy import erase
    from cinerec.platform.accounts import Accounts
    from cinerec.platform.elasticsearch import connect

    print_json(erase(settings, connect(settings.elasticsearch), Accounts(settings), args.user_id))
    return 0


def audit_command(settings: Settings, args: argparse.Namespace) -> int:
    report = audit(settings, args.user_id, args.email)
    print_json(report)
    return 0 if report["clean"] else 1


def status_command(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.platform.kafka import privacy_book

    erased = privacy_book(settings.kafka, settings.web.first_user_id).erased()
    inside = sorted(erased & champion_users(settings))
    print_json({"erased_users": len(erased), "champion_trained_on_erased": len(inside),
                "erased_in_champion": inside[:100], "retrain": bool(inside)})
    return 0


def catalog_command(settings: Settings, args: argparse.Namespace) -> int:
    from cinerec.core.catalog import markdown
    from cinerec.platform.accounts import table_types

    sys.stdout.write(markdown(table_types()))
    return 0


def add_parsers(sub) -> None:
    privacy = sub.add_parser("privacy", help="people's data: export, erase, audit; status; data catalog")
    actions = privacy.add_subparsers(dest="action", required=True)
    for name, run, text in (("export", export_command, "everything held about a user, as JSON"),
                            ("erase", erase_command, "erase a user from every store"),
                            ("audit", audit_command, "search every store for a user; exit 1 if any still "
                                                     "holds their data")):
        p = actions.add_parser(name, help=text)
        p.add_argument("user_id", type=int)
        if name == "audit":
            p.add_argument("--email", help="also search for this e-mail address")
        p.set_defaults(run=run)
    actions.add_parser("status", help="erased users the champion model was trained on").set_defaults(
        run=status_command)
    actions.add_parser("catalog", help="the data catalog as Markdown").set_defaults(run=catalog_command)
