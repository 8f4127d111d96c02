"""Start-up overhead of the Spark and PyTorch task types over the bare tools.

    .venv/bin/python bench/integration_overhead.py

Spark: a plait workflow of one Spark task (count of 1,000 rows on local[2]) against a bare
Python process that builds the same SparkSession and runs the same count. PyTorch: a plait
task on 2 processes (init, one all_reduce) against a bare `torch.distributed.run` of the same
script. Best of 3 runs each, alternating.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import plait
import spark_tasks  # noqa: E402
import torch_tasks  # noqa: E402
from common import fresh_home, machine, table
from plait.engine import build_engine

BARE_SPARK = """
from pyspark.sql import SparkSession
s = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
     .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
assert s.range(1000).count() == 1000
s.stop()
"""

BARE_DDP = """
import torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.ones(1000)
dist.all_reduce(t)
dist.destroy_process_group()
"""


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    fresh_home()
    script = Path(tempfile.mkdtemp()) / "ddp.py"
    script.write_text(BARE_DDP)
    engine = build_engine()
    env = {"SPARK_LOCAL_IP": "127.0.0.1"}
    import os

    def bare_spark() -> None:
        subprocess.run([sys.executable, "-c", BARE_SPARK], check=True, env={**os.environ, **env},
                       capture_output=True)

    def bare_ddp() -> None:
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--nnodes=1",
                        "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", str(script)], check=True,
                       capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})

    def plait_spark() -> None:
        assert plait.run(spark_tasks.spark_job, {"rows": 1000}, engine=engine).outputs == {"o0": 1000}

    def plait_ddp() -> None:
        assert plait.run(torch_tasks.ddp_job, {"size": 1000}, engine=engine).outputs == {"o0": 2000.0}

    results = {name: [] for name in ("bare_spark", "plait_spark", "bare_ddp", "plait_ddp")}
    for _ in range(3):
        for name, fn in (("bare_spark", bare_spark), ("plait_spark", plait_spark), ("bare_ddp", bare_ddp),
                         ("plait_ddp", plait_ddp)):
            results[name].append(timed(fn))
    engine.close()
    best = {k: min(v) for k, v in results.items()}
    print(f"integration start-up, best of 3, {machine()}")
    print(table(["work", "bare tool s", "plait task s", "overhead s", "ratio"], [
        ["Spark session + count (local[2])", f"{best['bare_spark']:.2f}", f"{best['plait_spark']:.2f}",
         f"{best['plait_spark'] - best['bare_spark']:.2f}", f"{best['plait_spark'] / best['bare_spark']:.2f}x"],
        ["DDP, 2 processes, one all_reduce", f"{best['bare_ddp']:.2f}", f"{best['plait_ddp']:.2f}",
         f"{best['plait_ddp'] - best['bare_ddp']:.2f}", f"{best['plait_ddp'] / best['bare_ddp']:.2f}x"],
    ]))


if __name__ == "__main__":
    main()
