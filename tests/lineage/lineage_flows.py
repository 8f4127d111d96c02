"""Workflows whose tasks write and read datasets: a File, a data frame (Parquet), a map's files;
one that fails, one that lingers (to be aborted)."""

from __future__ import annotations

import time

import pandas as pd
import plait
from plait import File, current_context


@plait.task
def write_report(text: str) -> File:
    path = current_context().scratch / "report.txt"
    path.write_text(text)
    return File(path)


@plait.task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n))})


@plait.task
def summarise(report: File, frame: pd.DataFrame) -> str:
    return f"{report.path.read_text()}: {int(frame['x'].sum())}"


@plait.workflow
def report_flow(text: str, n: int) -> str:
    return summarise(report=write_report(text=text), frame=make_frame(n=n))


@plait.task(retries=1)
def refuse(report: File) -> str:
    raise ValueError(f"refusing {report.path.name}")


@plait.workflow
def failing_flow(text: str) -> str:
    return refuse(report=write_report(text=text))


@plait.task
def square(x: int) -> int:
    return x * x


@plait.workflow
def files_and_numbers(texts: list[str]) -> list[int]:
    """A map whose items write files (each recorded), and one over numbers (not recorded)."""
    plait.map(write_report, texts)
    return plait.map(square, [1, 2, 3])


@plait.task
def linger(report: File, seconds: float) -> str:
    time.sleep(seconds)
    return report.path.read_text()


@plait.workflow
def lingering_flow(text: str, seconds: float) -> str:
    return linger(report=write_report(text=text), seconds=seconds)
