"""The bounds of what a request may carry, stated once: the OpenAPI document publishes them and the
server enforces them, so a request the document calls valid is accepted and one it calls invalid
gets a 400 (or, for a size, the 413/414 the document names).

    RATING         the body of POST /ratings (additional fields refused)
    ALERTS         Alertmanager's webhook body (POST /ops/alerts): its documented fields, every
                   list, map and string bounded; the route reads at most ``longest_json(ALERTS)`` bytes
    longest_json   the largest JSON a schema allows (every string at 12 bytes a character: an
                   escaped surrogate pair), so a size limit can sit above every valid body
"""

from __future__ import annotations

from jsonschema import Draft202012Validator

from cinerec.core.events import CLIENT_FIELDS, MAX_ID

RATING = {"type": "object", "required": list(CLIENT_FIELDS), "additionalProperties": False,
          "properties": {"user_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                         "movie_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                         "rating": {"type": "number", "enum": [x / 2 for x in range(1, 11)]}}}

ALERTS_MAX = 10                      # alerts in one webhook call (deployment/alertmanager: max_alerts)
TEXT = {"type": "string", "maxLength": 256}
STATUS = {"type": "string", "enum": ["firing", "resolved"]}
LABELS = {"type": "object", "maxProperties": 16, "propertyNames": {"maxLength": 64},
          "additionalProperties": TEXT}
ALERT = {"type": "object", "additionalProperties": False,
         "properties": {"status": STATUS, "labels": LABELS, "annotations": LABELS, "startsAt": TEXT,
                        "endsAt": TEXT, "generatorURL": TEXT, "fingerprint": TEXT}}
ALERTS = {"type": "object", "required": ["alerts"], "additionalProperties": False,
          "properties": {"alerts": {"type": "array", "maxItems": ALERTS_MAX, "items": ALERT},
                         "version": TEXT, "groupKey": TEXT, "truncatedAlerts": {"type": "integer", "minimum": 0,
                                                                                 "maximum": 2**31 - 1},
                         "status": STATUS, "receiver": TEXT, "groupLabels": LABELS, "commonLabels": LABELS,
                         "commonAnnotations": LABELS, "externalURL": TEXT}}

_ALERTS = Draft202012Validator(ALERTS)
CHAR_BYTES = 12                      # "\ud83d\ude00": one character, escaped as a surrogate pair


def alerts_error(body) -> str | None:
    """Why ``body`` is not a webhook body the document allows, or None."""
    error = next(iter(_ALERTS.iter_errors(body)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the body"
    return f"{where}: {error.message[:200]}"


def longest_json(schema: dict) -> int:
    """Bytes of the largest JSON document ``schema`` allows (bounded schemas only)."""
    kind = schema.get("type")
    if "enum" in schema:
        return max(len(str(v)) + 2 for v in schema["enum"])
    if kind == "string":
        return 2 + CHAR_BYTES * schema["maxLength"]
    if kind == "integer":
        return max(len(str(schema["minimum"])), len(str(schema["maximum"])))
    if kind == "array":
        return 2 + schema["maxItems"] * (longest_json(schema["items"]) + 1)
    if kind == "object":
        fields = sum(len(name) + 4 + longest_json(s) for name, s in schema.get("properties", {}).items())
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            key = 2 + CHAR_BYTES * schema["propertyNames"]["maxLength"]
            fields += schema["maxProperties"] * (key + 2 + longest_json(extra))
        return 2 + fields
    raise ValueError(f"no bound for {schema}")


ALERTS_MAX_BYTES = longest_json(ALERTS)
