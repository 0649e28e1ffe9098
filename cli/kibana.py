"""`cinerec kibana import --url URL`: posts the saved objects of ``kibana/cinerec.ndjson`` (data
views, the activity panels, the dashboard) to a Kibana's saved-objects import API."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from ._output import print_json
from .services import ServiceError
from core.settings import PROJECT_ROOT, Settings

SAVED_OBJECTS = PROJECT_ROOT / "kibana" / "cinerec.ndjson"


def import_objects(url: str, path: Path = SAVED_OBJECTS, *, timeout_s: float = 30.0) -> dict:
    """POST /api/saved_objects/_import?overwrite=true (multipart, ``kbn-xsrf``); Kibana's answer."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: application/ndjson\r\n\r\n")
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    headers = {"kbn-xsrf": "cinerec", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(f"{url.rstrip('/')}/api/saved_objects/_import?overwrite=true", data=body,
                                     method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as err:
        detail = err.read()[:300].decode(errors="replace")
        raise ServiceError(f"Kibana refused the import ({err.code}): {detail}") from None
    except urllib.error.URLError as err:
        raise ServiceError(f"Kibana is not reachable at {url}: {err.reason}") from None
    if not answer.get("success"):
        raise ValueError(f"Kibana imported {answer.get('successCount', 0)} objects with errors: "
                         f"{json.dumps(answer.get('errors', []))[:300]}")
    return answer


def kibana_command(settings: Settings, args: argparse.Namespace) -> int:
    answer = import_objects(args.url, args.file)
    print_json({"url": args.url, "file": str(args.file), "imported": answer.get("successCount")})
    return 0


def add_parsers(sub) -> None:
    kibana = sub.add_parser("kibana", help="the activity dashboards as Kibana saved objects")
    kibana_sub = kibana.add_subparsers(dest="action", required=True)
    load = kibana_sub.add_parser("import", help="post kibana/cinerec.ndjson to a Kibana's saved-objects API")
    load.add_argument("--url", required=True, help="Kibana's base URL, e.g. http://localhost:5601")
    load.add_argument("--file", type=Path, default=SAVED_OBJECTS, help="saved objects (default: %(default)s)")
    load.set_defaults(run=kibana_command)
