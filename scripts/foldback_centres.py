"""Targets met after the fold-back, per centre of the fit runs' own fits (no real run).

Usage: .venv/bin/python scripts/foldback_centres.py OUT [SCENARIO ...] [--centres a,b]

OUT holds SCENARIO-seed1 and SCENARIO-seed2 (``scripts/validate_shipped.sh``). For
each scenario and each direction (fit on seed 1, score seed 2; fit on seed 2, score
seed 1: never on the run it scores), the fold-back is fitted with each centre
(``pooled``: every frame pooled, as before; ``median``, ``steady``, ``trimmed``:
adaptsim.testbed.foldback.fit_foldback) against the fit run's twin simulated now,
and the scored run's twin re-simulated with it beside its saved real run
(adaptsim.testbed.rescore.rescore_folder: relative to the host's speed where the
folders probed it). Prints per scenario, direction and centre the targets met (mean
within 10 %, p95 within 15 %), Kendall's tau, the fitted edge and cloud scales, each
fit run's own scales and the runs more than 10 % from the centre; then a Markdown
table of targets met. The folders are only read.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adaptsim.errors import UserError, script_main
from adaptsim.testbed.compare import ranking
from adaptsim.testbed.foldback import CENTRES, check_centre
from adaptsim.testbed.rescore import rescore_folder
from adaptsim.testbed.scorecard import MEAN_TARGET_PCT, P95_TARGET_PCT

DEFAULT = ("vehicle_trace", "norway_train_1", "norway_metro_2")
ORDER = ("pooled", "median", "steady", "trimmed")


def met(t) -> int:
    ok = (t["mean_error_pct"].abs() <= MEAN_TARGET_PCT) & (
        t["p95_error_pct"].abs() <= P95_TARGET_PCT
    )
    return int(ok.sum())


def _scale(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main(argv: list[str]) -> None:
    args, centres = list(argv), [c for c in ORDER if c in CENTRES]
    if "--centres" in args:
        i = args.index("--centres")
        centres = [check_centre(c) for c in (args[i + 1] if i + 1 < len(args) else "").split(",")]
        del args[i : i + 2]
    if not args:
        raise UserError("usage: foldback_centres.py OUT [SCENARIO ...] [--centres a,b]")
    out = Path(args[0])
    rows = []
    for name in args[1:] or DEFAULT:
        for fit, scored in ((1, 2), (2, 1)):
            fit_dir, scored_dir = out / f"{name}-seed{fit}", out / f"{name}-seed{scored}"
            cells = []
            for centre in centres:
                t, fb = rescore_folder(scored_dir, fold_back_from=fit_dir, centre=centre)
                rk = ranking(t)
                runs = ", ".join(f"{k} {_scale(e)}/{_scale(c)}" for k, e, c in fb.run_scales)
                flagged = "; ".join(f"{k} {r} x{s:.3f} vs x{c:.3f}" for k, r, s, c in fb.outliers())
                print(f"{name} fit seed {fit} -> score seed {scored}, {centre}: "
                      f"{met(t)} of {len(t)} met, tau {rk['kendall_tau']:.2f}, "
                      f"{rk['discordant_pairs']} pairs opposite; edge x{fb.edge_scale:.3f} "
                      f"cloud x{fb.cloud_scale:.3f} (relative: {fb.host_relative}); runs "
                      f"(edge/cloud): {runs}; far from the centre: {flagged or 'none'}",
                      flush=True)  # fmt: skip
                cells.append(f"{met(t)} of {len(t)} (tau {rk['kendall_tau']:.2f}, "
                             f"edge x{fb.edge_scale:.2f})")  # fmt: skip
            rows.append(f"| {name} | seed {fit} -> {scored} | " + " | ".join(cells) + " |")
    print()
    print("| scenario | fit -> scored | " + " | ".join(centres) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in centres) + " |")
    print("\n".join(rows))


if __name__ == "__main__":
    script_main("foldback_centres", lambda: main(sys.argv[1:]))
