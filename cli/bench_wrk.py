"""`cinerec bench wrk`: each route under wrk (Debian's HTTP load generator), side by side in one run.

Real titles, user ids and search prefixes come from the indices; each route's requests cycle over
them through a small Lua script. Reports per route requests/s, latency percentiles, errors, and
the throughput as a fraction of ``GET /films/<id>`` (one GET by id: the floor of this stack).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from elasticsearch import Elasticsearch

FLOOR = "film_by_id"


def route_paths(es: Elasticsearch, count: int = 200) -> dict[str, list[str]]:
    """Paths of the benchmarked routes, from the films and users the indices hold."""
    films = [h["_source"] for h in es.search(index="films", size=count, query={"range": {"like_count": {"gte": 1}}},
                                             sort=[{"rating_count": "desc"}],
                                             source=["movie_id", "title", "year"])["hits"]["hits"]]
    users = [h["_source"]["user_id"] for h in es.search(index="users", size=count, source=["user_id"],
                                                         query={"exists": {"field": "vector"}})["hits"]["hits"]]
    if not films or not users:
        raise LookupError("the films/users indices are empty: run `cinerec index` first")
    titles = [f"{f['title']} ({f['year']})" if f.get("year") else f["title"] for f in films]
    return {"title": [f"/recommendations?title={quote(t)}" for t in titles],
            "user": [f"/users/{u}/recommendations" for u in users],
            "search": [f"/films?q={quote(f['title'][:4].strip())}" for f in films],
            FLOOR: [f"/films/{f['movie_id']}" for f in films]}


def run_wrk(base_url: str, paths: list[str], *, duration_s: float, connections: int, threads: int) -> dict:
    wrk = shutil.which("wrk")
    if not wrk:
        raise FileNotFoundError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(_lua(paths))
        result = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--latency",
                                 "-s", str(script), base_url], capture_output=True, text=True,
                                timeout=duration_s + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr.strip()[:300]}")
    return parse_wrk(result.stdout)


def parse_wrk(output: str) -> dict:
    """Requests/s, latency percentiles (ms) and errors from wrk's ``--latency`` report."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
    percentiles = {f"p{p}_ms": round(float(v) * units[u], 2)
                   for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)}
    requests = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
            "requests": int(requests[1]) if requests else 0, **percentiles,
            "errors": (int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)}


def bench_routes(base_url: str, routes: dict[str, list[str]], *, duration_s: float, connections: int,
                 threads: int) -> dict:
    results = {name: run_wrk(base_url, paths, duration_s=duration_s, connections=connections, threads=threads)
               for name, paths in routes.items()}
    floor = results[FLOOR]["requests_per_s"] or 1.0
    for report in results.values():
        report["of_film_by_id"] = round(report["requests_per_s"] / floor, 3)
    return results


def _lua(paths: list[str]) -> str:
    quoted = ",\n".join(f'  "{p}"' for p in paths)
    return ("paths = {\n" + quoted + "\n}\ncounter = 0\n"
            "request = function()\n  counter = counter + 1\n"
            "  return wrk.format(\"GET\", paths[(counter % #paths) + 1])\nend\n")
