"""The one Spark session of a batch run: local by default, shared with whoever created it first."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence


def spark_session(app: str = "cinerec", master: str = "local[2]", jars: Sequence[str] = ()):
    """``jars``: extra jars on ``spark.jars`` (the streaming job's Kafka connector). The first
    caller in a process creates the session; later callers get it as it is."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    session = (SparkSession.builder.master(master).appName(app)
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", "4g")
               .config("spark.executor.memory", "1g")      # on a standalone cluster's workers (local: unused)
               .config("spark.jars", ",".join(jars))
               .getOrCreate())
    missing = [j for j in jars if j not in session.sparkContext.getConf().get("spark.jars", "")]
    if missing:
        raise RuntimeError(f"this process already runs a Spark session without {len(missing)} of the jars asked "
                           f"for ({missing[0]}): jars are fixed when a session starts")
    session.sparkContext.setLogLevel("ERROR")
    if session.sparkContext.getCheckpointDir() is None:
        # ALS checkpoints its factors every few iterations; without a directory the lineage
        # grows until task serialisation overflows the stack.
        session.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="cinerec-spark-"))
    return session
