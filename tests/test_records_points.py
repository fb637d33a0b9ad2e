"""A real run's records keep a frame that never reached the edge with no point (NaN,
so the column is float): the readers take it, while a point that is not a whole
number is still refused (the robustness merge refused every float column, and a
two-host run whose cloud died could no longer be read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptsim.errors import UserError
from adaptsim.report.folder import RECORD_NEEDS, check_records


def _records(points) -> pd.DataFrame:
    n = len(points)
    frame = {c: np.zeros(n) for c in RECORD_NEEDS}
    frame.update(policy=["p"] * n, seed=np.ones(n, dtype=np.int64), point=points,
                 deadline_met=np.ones(n, dtype=bool))  # fmt: skip
    return pd.DataFrame(frame)


def test_a_float_point_column_with_unreached_frames_is_read():
    check_records(_records([1.0, 3.0, np.nan]), Path("r.parquet"))


def test_a_point_that_is_not_whole_is_refused():
    with pytest.raises(UserError, match="point must hold whole numbers"):
        check_records(_records([1.0, 2.5]), Path("r.parquet"))
