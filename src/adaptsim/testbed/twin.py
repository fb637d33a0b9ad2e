"""The twin's expectation: the same arrivals simulated under several service-noise draws.

One twin run is one sample of the model: over 30-38 frames its p95 is about its
second-largest noise draw, so a single draw's p95 can sit far from the measured
one while every stage's mean agrees. The twin therefore simulates the same
scenario and seed ``draws`` times, changing only the per-frame service noise
(edge, link, cloud factors); the arrivals, the monitor's readings and the traces
stay those of the seed, so the real run and every draw see the same frames and
conditions. Draw 0 is the seed's own noise: the single-draw twin
(``simulated/``, and the ``single_*`` columns of the comparison). Each statistic
(mean, p50, p95, deadline-miss rate) is compared as the median over draws, and
the draws' 10th-90th percentile is its spread: a measured value inside it is
within the model's own sampling.

The simulator draws its noise with :func:`adaptsim.simulator.draws.draw` from
the seed's one generator; draw k > 0 is the scenario's ``noise_stream`` k: the
service noise alone from a generator seeded by ``[seed, k]``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from adaptsim.errors import UserError
from adaptsim.simulator import Results, Scenario, run_scenario

__all__ = ["NOISE_DRAWS", "SPREAD_PCT", "compare_draws", "noise_draw", "twin_draws"]

NOISE_DRAWS = 9  # service-noise draws of the twin (draw 0 is the seed's own)
SPREAD_PCT = (10.0, 90.0)  # the draws' spread shown beside the median
# summary column -> the comparison's short name
_STATS = (("mean_s", "mean"), ("p50_s", "p50"), ("p95_s", "p95"),
          ("deadline_miss_rate", "miss_rate"))  # fmt: skip


def noise_draw(sc: Scenario, k: int) -> Scenario:
    """The scenario whose simulations use noise draw ``k`` of each seed (0: the seed's
    own). Only the service noise changes; arrivals and monitor noise are the seed's."""
    return replace(sc, noise_stream=int(k))


def twin_draws(sc: Scenario, draws: int = NOISE_DRAWS) -> list[Results]:
    """The twin simulated with noise draws 0..draws-1 (the first is the single-draw twin)."""
    if draws < 1:
        raise UserError(f"--noise-draws {draws}: give at least 1")
    return [run_scenario(noise_draw(sc, k)) for k in range(draws)]


def compare_draws(real: pd.DataFrame, twins: list[Results] | list[pd.DataFrame]) -> pd.DataFrame:
    """Per policy: measured vs the median over draws, the draws' spread, and draw 0.

    ``real`` is the real run's summary; ``twins`` the draws (results or their
    summaries), draw 0 first. Columns: those of
    :func:`~adaptsim.testbed.compare.compare_policies` with ``simulated_*`` the
    median over draws (so the errors, the ranking and the targets use it), plus
    ``simulated_{stat}_p10`` / ``_p90`` (the draws' spread), ``{stat}_inside``
    (the measured value lies within that spread), ``single_simulated_{stat}``
    and ``single_{stat}_error_pct`` (draw 0 alone: the single-draw twin) and
    ``noise_draws``.
    """
    from adaptsim.testbed.compare import compare_policies, err_pct

    sums = [t.summary if isinstance(t, Results) else t for t in twins]
    if not sums:
        raise ValueError("compare_draws needs at least one twin draw")
    single = compare_policies(real, sums[0])
    stacked = pd.concat([s.assign(draw=k) for k, s in enumerate(sums)], ignore_index=True)
    lo_q, hi_q = (q / 100 for q in SPREAD_PCT)
    rows = []
    for _, r in single.iterrows():
        d = stacked[stacked["policy"] == r["policy"]]
        row = dict(r)
        for col, short in _STATS:
            v = d[col].to_numpy(dtype=float)
            med, lo, hi = (float(np.quantile(v, q)) for q in (0.5, lo_q, hi_q))
            measured = row[f"measured_{short}_s" if short != "miss_rate" else "measured_miss_rate"]
            sim_key = f"simulated_{short}_s" if short != "miss_rate" else "simulated_miss_rate"
            row[f"single_{sim_key}"] = row[sim_key]
            row[sim_key] = med
            row[f"{sim_key}_p10"], row[f"{sim_key}_p90"] = lo, hi
            row[f"{short}_inside"] = bool(lo <= measured <= hi)
            if short == "miss_rate":
                row["single_miss_rate_diff"] = row["miss_rate_diff"]
                row["miss_rate_diff"] = med - measured
            else:
                row[f"single_{short}_error_pct"] = row[f"{short}_error_pct"]
                row[f"{short}_error_pct"] = err_pct(med, measured)
        row["noise_draws"] = len(sums)
        rows.append(row)
    return pd.DataFrame(rows)
