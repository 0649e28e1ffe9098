"""Posts the saved objects of ``kibana/cinerec.ndjson`` (data
views, the activity panels, the dashboard) to a Kibana's saved-objects import API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from cinerec.core.errors import ServiceError
from cinerec.core.settings import PROJECT_ROOT

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
