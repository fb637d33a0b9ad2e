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
from adaptsim.testbed.foldback import (
    FOLD_CENTRE,
    FoldBack,
    check_centre,
    fit_foldback,
    folded_twin,
)
from adaptsim.testbed.folder import (
    REAL_SUMMARY,
    fold_back_source,
    host_speed_facts,
    scored_source,
    validation_facts,
    validation_table,
)
from adaptsim.testbed.host_speed import HostSpeed, host_speeds, probed_twin
from adaptsim.testbed.scenario import twin_scenario
from adaptsim.testbed.twin import NOISE_DRAWS, compare_draws, twin_draws

__all__ = [
    "fit_fresh",
    "folder_speeds",
    "real_summary",
    "rescore_folder",
    "rescore_probed",
    "twin_scenario",
]


def folder_speeds(folder: Path, sc, pool: str | None = None) -> dict[str, HostSpeed]:
    """The host speed of each policy run of a saved validation folder (its probes,
    against ``sc``'s calibration: the twin's now), each run's own or pooled per seed
    (``pool``; default the folder's ``probe_pool``, ``run`` for one written before it);
    ``{}`` for a folder without probes."""
    folder = Path(folder)
    facts = validation_facts(folder)
    return host_speeds(host_speed_facts(folder, facts), sc.model,
                       pool or facts.get("probe_pool", "run"))  # fmt: skip


def rescore_folder(
    folder: Path,
    fold_back_from: Path | None = None,
    draws: int = NOISE_DRAWS,
    *,
    host_speed: bool = True,
    pool: str | None = None,
    centre: str = FOLD_CENTRE,
) -> tuple[pd.DataFrame, FoldBack | None]:
    """The folder's saved real run against the twin simulated now (with ``draws`` noise draws).

    With ``fold_back_from`` (another validation folder: never ``folder`` itself)
    the twin has what that run measured folded back, fitted against that run's twin
    simulated now (its saved twin may come from an older calibration): relative to
    the host's speed and applied at each policy run's own where both folders have
    probes (``host_speed`` False: as before the probes; ``pool``: see
    :func:`folder_speeds`, for both folders; ``centre``: how its policy runs' fits
    make one, :func:`~adaptsim.testbed.foldback.fit_foldback`). Returns the comparison of
    :func:`~adaptsim.testbed.twin.compare_draws` and the fold-back used.
    """
    folder = Path(folder)
    real = real_summary(folder)  # every folder checked before minutes of simulation
    if fold_back_from is not None:
        fold_back_source(fold_back_from, "fold-back from")
    sc = twin_scenario(folder)
    if fold_back_from is None:
        return compare_draws(real, twin_draws(sc, draws)), None
    if Path(fold_back_from).resolve() == folder.resolve():
        raise UserError("fold-back: fit on another run than the one you score")
    fb = fit_fresh(Path(fold_back_from), host_speed=host_speed, pool=pool, centre=centre)
    speeds = folder_speeds(folder, sc, pool) if host_speed else {}
    return compare_draws(real, folded_twin(sc, fb, speeds, draws)), fb


def fit_fresh(
    folder: Path, *, host_speed: bool = True, pool: str | None = None, centre: str = FOLD_CENTRE
) -> FoldBack:
    """The fold-back of a saved validation folder, fitted against its twin simulated now
    (its saved twin may come from an older calibration or model), not its saved one."""
    check_centre(centre)  # before the minutes of simulation
    fit_sc = twin_scenario(Path(folder))
    fresh = run_scenario(fit_sc).records
    return fit_foldback(Path(folder), simulated=fresh, scenario=fit_sc, host_speed=host_speed,
                        pool=pool, centre=centre)  # fmt: skip


def rescore_probed(
    folder: Path, draws: int = NOISE_DRAWS, pool: str | None = None
) -> pd.DataFrame | None:
    """The folder's saved real run against the twin at each run's probed host speed
    (``pool``: see :func:`folder_speeds`), simulated now; None for a folder without
    probes."""
    folder = Path(folder)
    real = real_summary(folder)
    sc = twin_scenario(folder)
    speeds = folder_speeds(folder, sc, pool)
    if not speeds:
        return None
    return compare_draws(real, probed_twin(sc, speeds, draws))


def real_summary(folder: Path) -> pd.DataFrame:
    """A saved validation's real run per policy (``real/summary.csv``), the folder checked."""
    scored_source(folder)
    return validation_table(folder, "real/summary.csv", REAL_SUMMARY)
