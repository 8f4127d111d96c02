"""Notebooks and workflows for the papermill plugin's tests, written with nbformat."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import nbformat
import pandas as pd
import plait
from plait_papermill import notebook_task

HERE = Path(__file__).parent / "generated"


def notebook(name: str, *cells: str, parameters: str = "") -> Path:
    """Write a notebook whose first cell (tagged ``parameters``) holds the defaults."""
    HERE.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, *(nbformat.v4.new_code_cell(c) for c in cells)]
    path = HERE / f"{name}.ipynb"
    # Atomically: every process that imports this module (each xdist worker, each task
    # process) writes the same notebooks while others may be reading them.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, path)
    return path


STATS = notebook(
    "stats",
    "import pandas as pd\nfrom pathlib import Path\nfrom plait_papermill import record",
    "frame = pd.read_parquet(data)\nmean = float(frame['x'].mean())\nprint('mean is', mean)",
    "out = Path('summary.txt').resolve()\nout.write_text(f'{title}: {mean}')",
    "record('mean', mean)\nrecord('rows', len(frame))\nrecord('doubled', frame.assign(x=frame.x * 2))\n"
    "record('summary', out)",
    parameters="data = ''\ntitle = 'untitled'",
)

FAILING = notebook(
    "failing",
    "from plait_papermill import record\nvalue = 1",
    "ratio = value / divisor",
    "record('ratio', ratio)",
    parameters="divisor = 1",
)

SLOW = notebook(
    "slow",
    "import os, time\nwith open(marker, 'a') as fh:\n    fh.write(str(os.getpid()) + '\\n')",
    "time.sleep(seconds)\nfrom plait_papermill import record\nrecord('n', 1)",
    parameters="marker = ''\nseconds = 1",
)

FLAKY = notebook(  # fails on its first run, succeeds on the next: each run appends a line to ``log``
    "flaky",
    "from plait_papermill import record\nwith open(log, 'a') as fh:\n    fh.write('run\\n')\n"
    "runs = len(open(log).read().splitlines())",
    "if runs == 1:\n    raise RuntimeError('the first run fails')",
    "record('runs', runs)",
    parameters="log = ''",
)

QUICK = notebook(
    "quick",
    "from plait_papermill import record\nrecord('total', a + b)",
    parameters="a = 0\nb = 0",
)

WHICH_KERNEL = notebook(  # records PLAIT_PROBE_KERNEL, which only the probe kernel's spec sets
    "which_kernel",
    "import os\nfrom plait_papermill import record\nrecord('kernel', os.environ.get('PLAIT_PROBE_KERNEL', 'none'))",
)

stats = notebook_task("stats", STATS, inputs={"data": pd.DataFrame, "title": str},
                      outputs={"mean": float, "rows": int, "doubled": pd.DataFrame, "summary": plait.File})
failing = notebook_task("failing", FAILING, inputs={"divisor": int}, outputs={"ratio": float})
slow = notebook_task("slow", SLOW, inputs={"marker": str, "seconds": int}, outputs={"n": int})
quick = notebook_task("quick", QUICK, inputs={"a": int, "b": int}, outputs={"total": int})
flaky = notebook_task("flaky", FLAKY, inputs={"log": str}, outputs={"runs": int}, retries=1)


@plait.task
def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(n)]})


@plait.task
def total(df: pd.DataFrame) -> float:
    return float(df["x"].sum())


@plait.task
def read(f: plait.File) -> str:
    return f.read_text()


class Analysis(NamedTuple):
    mean: float
    rows: int
    doubled_total: float
    summary: str


@plait.workflow
def analyse(n: int, title: str) -> Analysis:
    out = stats(data=frame(n=n), title=title)
    return out.mean, out.rows, total(df=out.doubled), read(f=out.summary)


@plait.workflow
def divide(divisor: int) -> float:
    return failing(divisor=divisor)


@plait.workflow
def flaky_once(log: str) -> int:
    return flaky(log=log)
