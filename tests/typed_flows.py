"""Tasks and workflows the type tests run (a module, so worker processes can import it)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import plait
from pandera.typing import DataFrame, Series


class Positive(pa.DataFrameModel):
    """Every ``x`` is zero or more."""

    x: Series[int] = pa.Field(ge=0)


@plait.task
def make_signed(values: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"x": values})


@plait.task
def sum_positive(df: DataFrame[Positive]) -> int:
    return int(df["x"].sum())


@plait.workflow
def validated(values: list[int]) -> int:
    return sum_positive(df=make_signed(values=values))


@plait.task(retries=3)
def make_invalid(marker: str) -> DataFrame[Positive]:
    """Return a frame that breaks its own declared schema, counting each attempt in ``marker``."""
    with open(marker, "a") as fh:
        fh.write("attempt\n")
    return pd.DataFrame({"x": [1, -5]})


@plait.workflow
def invalid_output(marker: str) -> int:
    return sum_positive(df=make_invalid(marker=marker))


@plait.task(retries=3)
def sum_positive_retried(df: DataFrame[Positive]) -> int:
    return int(df["x"].sum())


@plait.workflow
def invalid_input(values: list[int]) -> int:
    return sum_positive_retried(df=make_signed(values=values))
