"""Re-scoring a saved validation folder with the current twin: no new real run.

A validation folder keeps the real run (``real/``) and how it was made
(``validation.json``: scenario, calibration, time scale, duration, seeds,
rate). When the twin's model changes after the real runs were made (a new
fold-back term, the noise draws of :mod:`~adaptsim.testbed.twin`), the twin is
simulated again from those facts and compared with the saved real run. The
folder is only read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError
from adaptsim.simulator import run_scenario
from adaptsim.testbed.foldback import FoldBack, apply_foldback, fit_foldback
from adaptsim.testbed.scenario import twin_scenario
from adaptsim.testbed.twin import NOISE_DRAWS, compare_draws, twin_draws

__all__ = ["rescore_folder", "twin_scenario"]


def rescore_folder(
    folder: Path, fold_back_from: Path | None = None, draws: int = NOISE_DRAWS
) -> tuple[pd.DataFrame, FoldBack | None]:
    """The folder's saved real run against the twin simulated now (with ``draws`` noise draws).

    With ``fold_back_from`` (another validation folder: never ``folder`` itself)
    the twin has what that run measured folded back, fitted against that run's twin
    simulated now (its saved twin may come from an older calibration). Returns the comparison of
    :func:`~adaptsim.testbed.twin.compare_draws` and the fold-back used.
    """
    folder = Path(folder)
    sc = twin_scenario(folder)
    fb = None
    if fold_back_from is not None:
        if Path(fold_back_from).resolve() == folder.resolve():
            raise UserError("fold-back: fit on another run than the one you score")
        # fitted against the current twin of that run, not its saved (maybe stale) one
        fit_sc = twin_scenario(Path(fold_back_from))
        fresh = run_scenario(fit_sc).records
        fb = fit_foldback(Path(fold_back_from), simulated=fresh, scenario=fit_sc)
        sc = apply_foldback(sc, fb)
    real = pd.read_csv(folder / "real" / "summary.csv")
    return compare_draws(real, twin_draws(sc, draws)), fb
