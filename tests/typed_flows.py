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
