"""The online-metrics consumer as a program (`cinerec online`): impressions, clicks and ratings of
the closed loop into ``online_metrics`` and Prometheus, judged against the synthetic world's
hidden tastes when there is one, drift against the champion's training data."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from cinerec.core.settings import Settings
from cinerec.core.shutdown import stop_on_signals
from cinerec.simulator.world import world_dir


def run(settings: Settings, *, metrics_port: int, duration_s: float | None = None) -> None:
    """Consumes until SIGINT/SIGTERM or ``duration_s``; /metrics on ``metrics_port`` (0: off)."""
    from prometheus_client import start_http_server

    from cinerec.batch import movielens
    from cinerec.platform.elasticsearch import connect
    from cinerec.platform.registry import CHAMPION, Registry
    from cinerec.search.indices import ensure_event_indices
    from cinerec.simulator.closed_loop import truth
    from cinerec.simulator.world import TASTES_FILE, Tastes
    from cinerec.streaming.online import OnlineMetrics, Reference, consume

    es = connect(settings.elasticsearch)
    ensure_event_indices(es)
    reference, judge = None, None
    version = Registry(settings).version(CHAMPION)
    if version is not None:
        reference = Reference.of(movielens.load(Path(version.tags["data_path"])).ratings)
    tastes_file = world_dir(settings) / TASTES_FILE
    if tastes_file.is_file():
        tastes = Tastes.load(tastes_file)
        index = {int(u): i for i, u in enumerate(tastes.user_id)}
        judge = (lambda user, shown: truth(tastes, index[user], shown, set()) if user in index else None)
    if metrics_port:
        try:
            start_http_server(metrics_port)
        except OSError as err:
            print(f"online: no /metrics on :{metrics_port} ({err.strerror}); counting goes on", file=sys.stderr)
            metrics_port = 0
    stop = threading.Event()
    if duration_s:
        threading.Timer(duration_s, stop.set).start()
    print(f"online metrics: {settings.kafka.feedback_topic} + {settings.kafka.ratings_topic} -> online_metrics"
          + (f"; metrics on :{metrics_port}/metrics" if metrics_port else ""), file=sys.stderr, flush=True)
    with stop_on_signals(stop):
        consume(settings.kafka, OnlineMetrics(es, truth=judge, reference=reference), stop)
    print("online: stopped", file=sys.stderr)
