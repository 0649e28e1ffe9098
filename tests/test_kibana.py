"""kibana/cinerec.ndjson: every reference resolves, every field a panel uses exists in the mapping
of its data view's index, and `cinerec kibana import` posts the file as Kibana's API expects
(a local HTTP server stands in for Kibana, which cannot run here: this checks the wiring)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from cinerec.cli.main import main
from cinerec.ops.kibana import SAVED_OBJECTS
from cinerec.search.indices import MAPPINGS


def objects() -> list[dict]:
    return [json.loads(line) for line in SAVED_OBJECTS.read_text().splitlines() if line.strip()]


def fields(index: str) -> set[str]:
    """Every field of an index mapping, sub-fields as ``parent.sub``."""
    properties = json.loads((MAPPINGS / f"{index}.json").read_text())["mappings"]["properties"]
    names = set(properties)
    for name, spec in properties.items():
        names |= {f"{name}.{sub}" for sub in spec.get("fields", {})}
    return names


def test_data_views_panels_and_dashboard_reference_each_other_and_real_fields():
    found = {(o["type"], o["id"]): o for o in objects()}
    views = {o["id"]: o["attributes"] for o in found.values() if o["type"] == "index-pattern"}
    assert {v["title"] for v in views.values()} == {"ratings", "film_stats", "users", "dead_letters"}
    for view in views.values():
        if "timeFieldName" in view:
            assert view["timeFieldName"] in fields(view["title"])
    panels = [o for o in found.values() if o["type"] == "visualization"]
    assert len(panels) == 8
    used = set()
    for panel in panels:
        (ref,) = panel["references"]
        assert (ref["type"], ref["id"]) in found, ref
        search = json.loads(panel["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert search["indexRefName"] == ref["name"]
        index = views[ref["id"]]["title"]
        for agg in json.loads(panel["attributes"]["visState"])["aggs"]:
            if "field" in agg["params"]:
                assert agg["params"]["field"] in fields(index), (panel["id"], agg["params"]["field"], index)
                used.add((index, agg["params"]["field"]))
    assert {("ratings", "ts"), ("ratings", "rating"), ("film_stats", "genres"), ("dead_letters", "reason")} <= used
    (dashboard,) = [o for o in found.values() if o["type"] == "dashboard"]
    refs = {r["name"]: r for r in dashboard["references"]}
    for panel in json.loads(dashboard["attributes"]["panelsJSON"]):
        assert (refs[panel["panelRefName"]]["type"], refs[panel["panelRefName"]]["id"]) in found
    assert len(refs) == len(panels)


def test_import_posts_the_file_to_the_saved_objects_api(tmp_path, capsys):
    received = {}

    class Kibana(BaseHTTPRequestHandler):
        def do_POST(self):
            received.update(path=self.path, xsrf=self.headers["kbn-xsrf"], type=self.headers["Content-Type"],
                            body=self.rfile.read(int(self.headers["Content-Length"])))
            answer = json.dumps({"success": True, "successCount": len(objects())}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Kibana)
    threading.Thread(target=server.handle_request, daemon=True).start()
    assert main(["kibana", "import", "--url", f"http://127.0.0.1:{server.server_port}"]) == 0
    assert received["path"] == "/api/saved_objects/_import?overwrite=true" and received["xsrf"]
    assert received["type"].startswith("multipart/form-data; boundary=")
    assert SAVED_OBJECTS.read_bytes() in received["body"]
    assert json.loads(capsys.readouterr().out)["imported"] == 13
    assert main(["kibana", "import", "--url", "http://127.0.0.1:9"]) == 3        # nothing there: one line, exit 3
