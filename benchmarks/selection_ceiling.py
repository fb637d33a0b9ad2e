"""How much could online selection among the built-ins win? The ceiling of issue 17's
selection idea.

The idea: a layer above the built-in policies (Hedge, follow-the-leader, a bandit)
that chooses, window by window, which policy decides, from counterfactual predicted
latencies or its own realised ones. Whatever it learns, it cannot do better than
handing each window to the expert that turned out best in it, so this measures,
on the same seeds and with the same gap closed as ``policy_scores.py`` (seed means,
against the paying oracle), what such a layer could reach at most:

- **per trace**: the one expert with the least mean latency on each scenario, chosen
  in hindsight (what Hedge over fixed experts converges to, less its regret);
- **per window**: each run cut into windows of ``W`` seconds of arrival time; in each
  window the expert with the least summed latency over the seeds (it knows each
  window's conditions in hindsight, not the seed's own draws), or, the looser form,
  per seed and window (it also sees the seed's draws). Each expert's frames are taken
  from its own full run, so the composite inherits the expert's queues and deployed
  point and switching between experts costs nothing (``free``); ``pays`` adds the
  switch pause to the first frame of a window handed to another expert whose point
  differs from the previous window's last frame. Both are optimistic for a real
  selector, which learns only from the past and pays for its switches in queues;
- **online replays** of the same windows (``ftl``, ``ftl d0.8``, ``ftl d0.5``, ``last
  leader``): follow-the-leader on every expert's realised latency in the windows
  already ended (full information: more than a selector running one expert sees),
  undiscounted, discounted per window, or the last window's leader only.

Experts: the four adaptive built-ins at their defaults, and (unless ``--no-statics``)
every static point of the scenario's model (``static`` with ``point``).

Run: ``.venv/bin/python benchmarks/selection_ceiling.py [--seeds 5] [--windows 10,30,60,120]
[--no-statics] [SCENARIO.yaml ...]`` (default: the six trace scenarios).

Measured 2026-12-01 (seeds 1..5, the six trace scenarios; about 20 s with the four
adaptive experts, 45 s with the static points too): the per-trace best expert
closes 0.53 [0.41, 0.59] of the gap (0.54 [0.43, 0.61] with the static points),
the best single built-in 0.51; per window in hindsight 0.55 (120 s) to 0.66 (10 s)
over the four; every full-information follow-the-leader replay 0.46-0.51. Tables in
benchmarks/spread_tables/selection_ceiling.md, the reading in docs/policies.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.scoring import per_seed_metrics
from adaptsim.simulator import load_scenario, run_scenario
from adaptsim.simulator.scenario import PolicySpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from near_repeat_spread import TRACE_SCENARIOS
from persistence_scores import six_trace_mean
from policy_scores import ADAPTIVE, ROOT, markdown

__all__ = ["composite_means", "expert_specs", "window_sums"]


def expert_specs(ordinals, statics: bool) -> list[PolicySpec]:
    """The adaptive built-ins and, with ``statics``, one static expert per point."""
    specs = [PolicySpec(policy=p) for p in ADAPTIVE]
    if statics:
        specs += [
            PolicySpec(policy="static", params={"point": int(o)}, label=f"static {int(o)}")
            for o in ordinals
        ]
    return specs


def window_sums(records: pd.DataFrame, experts: list[str], window_s: float):
    """Per expert, seed and window: summed latency, frame count, the first and last
    frame's point. Arrays shaped (experts, seeds, windows); unfinished frames count inf."""
    seeds = sorted(records["seed"].unique())
    last = float(records["arrival_s"].max())
    n_win = int(last // window_s) + 1
    shape = (len(experts), len(seeds), n_win)
    lat = np.zeros(shape)
    count = np.zeros(shape)
    first_pt = np.full(shape, -1)
    last_pt = np.full(shape, -1)
    sidx = {s: j for j, s in enumerate(seeds)}
    for e, name in enumerate(experts):
        r = records.loc[records["policy"] == name, ["seed", "arrival_s", "latency_s", "point"]]
        r = r.assign(window=(r["arrival_s"] // window_s).astype(int)).sort_values(
            ["seed", "arrival_s"]
        )
        g = r.groupby(["seed", "window"], sort=False)
        agg = g.agg(
            lat=("latency_s", "sum"), n=("latency_s", "size"),
            first=("point", "first"), last=("point", "last"),
        )  # fmt: skip
        s = agg.index.get_level_values("seed").map(sidx).to_numpy()
        w = agg.index.get_level_values("window").to_numpy()
        lat[e][s, w] = agg["lat"].to_numpy(dtype=float)
        count[e][s, w] = agg["n"].to_numpy()
        first_pt[e][s, w] = agg["first"].to_numpy()
        last_pt[e][s, w] = agg["last"].to_numpy()
    return seeds, lat, count, first_pt, last_pt


def composite_means(lat, count, first_pt, last_pt, choice, pause_s: float) -> np.ndarray:
    """Per seed, the mean latency of the frames of the chosen expert in each window
    (``choice``: (seeds, windows) expert indices), with ``pause_s`` added to the first
    frame of a window handed to another expert whose point there differs from the
    previous window's last (an expert's own moves are in its latencies already)."""
    n_seeds, n_win = choice.shape
    si = np.arange(n_seeds)[:, None]
    wi = np.arange(n_win)[None, :]
    total = lat[choice, si, wi]
    frames = count[choice, si, wi]
    if pause_s > 0:
        start = first_pt[choice, si, wi]
        end = last_pt[choice, si, wi]
        prev_end = np.full(n_seeds, -1)
        prev_expert = np.full(n_seeds, -1)
        for w in range(n_win):
            has = frames[:, w] > 0
            handed = prev_expert != choice[:, w]
            moved = has & handed & (prev_end >= 0) & (start[:, w] != prev_end)
            total[:, w] += np.where(moved, pause_s, 0.0)
            prev_end = np.where(has, end[:, w], prev_end)
            prev_expert = np.where(has, choice[:, w], prev_expert)
    return total.sum(axis=1) / frames.sum(axis=1)


def online_choice(lat, default: int, discount: float | None) -> np.ndarray:
    """(seeds, windows) choices of a full-information follow-the-leader replay: window w
    goes to the expert with the least summed latency over windows before w (its own
    run's, per seed), each earlier window's sum weighted by ``discount`` per window
    (None: undiscounted, 0: the last window only); window 0 to ``default``."""
    n_exp, n_seeds, n_win = lat.shape
    choice = np.full((n_seeds, n_win), default)
    score = np.zeros((n_exp, n_seeds))
    for w in range(1, n_win):
        if discount is None:
            score = score + lat[:, :, w - 1]
        else:
            score = discount * score + lat[:, :, w - 1]
        choice[:, w] = np.argmin(np.nan_to_num(score, nan=np.inf), axis=0)
    return choice


def _check(lat, count, fp, lp, per_seed_means: np.ndarray) -> None:
    """A constant choice must give back each expert's own seed means (or the script stops)."""
    n_exp, n_seeds, n_win = lat.shape
    for e in range(n_exp):
        m = composite_means(lat, count, fp, lp, np.full((n_seeds, n_win), e), 0.0)
        finite = np.isfinite(m)
        if not np.allclose(m[finite], per_seed_means[e][finite], rtol=1e-9):
            sys.exit(f"composite of expert {e} {m} != its own means {per_seed_means[e]}")


ONLINE = {"ftl": None, "ftl d0.8": 0.8, "ftl d0.5": 0.5, "last leader": 0.0}


def _seed_rows(label: str, seeds, means) -> list[dict]:
    return [{"policy": label, "seed": s, "mean_s": v} for s, v in zip(seeds, means, strict=True)]


def _rows(name, per_seed, records, experts, windows, pause_s):
    """Extra per-seed rows (policy = the ceiling's label, mean_s) for one scenario."""
    seed_means = per_seed.pivot(index="seed", columns="policy", values="mean_s")
    rows, picked = [], {}
    # picked on every frame's latency, an unfinished one inf (per_seed leaves them out)
    means = records.groupby("policy")["latency_s"].mean()
    for label, pool in (("best adaptive", list(ADAPTIVE)), ("best expert", experts)):
        best = means[pool].idxmin()
        picked[label] = best
        rows += _seed_rows(label, seed_means.index, seed_means[best].to_numpy())
    for w_s in windows:
        seeds, lat, count, fp, lp = window_sums(records, experts, w_s)
        _check(lat, count, fp, lp, seed_means.loc[seeds, experts].to_numpy().T)
        default = experts.index("neurosurgeon")
        for label, d in ONLINE.items():
            choice = online_choice(lat, default, d)
            for cost, p in (("free", 0.0), ("pays", pause_s)):
                m = composite_means(lat, count, fp, lp, choice, p)
                rows += _seed_rows(f"{label} {w_s:g}s {cost}", seeds, m)
        across = np.argmin(np.nan_to_num(lat.sum(axis=1), nan=np.inf), axis=0)
        per_seed_choice = np.argmin(np.nan_to_num(lat, nan=np.inf), axis=0)
        for how, choice in (
            ("window", np.broadcast_to(across, (len(seeds), len(across)))),
            ("window+draws", per_seed_choice),
        ):
            for cost, p in (("free", 0.0), ("pays", pause_s)):
                m = composite_means(lat, count, fp, lp, np.asarray(choice), p)
                rows += _seed_rows(f"{how} {w_s:g}s {cost}", seeds, m)
    return pd.DataFrame(rows), picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--windows", default="10,30,60,120", help="window lengths, seconds")
    ap.add_argument("--no-statics", action="store_true", help="adaptive experts only")
    args = ap.parse_args()
    windows = [float(w) for w in args.windows.split(",") if w]
    seeds = tuple(range(1, args.seeds + 1))
    paths = args.scenarios or [ROOT / "scenarios" / f"{s}.yaml" for s in TRACE_SCENARIOS]
    t0 = time.perf_counter()
    per_seed_all, picks = {}, []
    for path in paths:
        sc = load_scenario(path)
        experts = expert_specs(sc.model.ordinals, not args.no_statics)
        specs = [PolicySpec(policy="static-best"), PolicySpec(policy="oracle"), *experts]
        sc = dataclasses.replace(sc, policies=tuple(specs), seeds=seeds)
        res = run_scenario(sc)
        if res.errors:
            sys.exit(f"{path.stem}: {res.errors}")
        names = [s.label or s.policy for s in experts]
        per_seed = per_seed_metrics(res.records)
        extra, picked = _rows(sc.name, per_seed, res.records, names, windows, sc.pause_s)
        per_seed_all[sc.name] = pd.concat([per_seed, extra], ignore_index=True)
        picks.append({"scenario": sc.name, **picked})
        print(f"[{time.perf_counter() - t0:.0f} s] {sc.name}", file=sys.stderr)
    # the labels every scenario has (static points differ between models)
    labels = list(per_seed_all[next(iter(per_seed_all))]["policy"].unique())
    common = set.intersection(*(set(ps["policy"]) for ps in per_seed_all.values()))
    # (a static point's ordinal names another layer in another model: no mean of those)
    labels = [
        p for p in labels
        if p in common and p not in ("static-best", "oracle") and not p.startswith("static ")
    ]  # fmt: skip
    table = []
    for name, ps in per_seed_all.items():
        m = ps.groupby("policy")["mean_s"].mean()
        sb, o = m["static-best"], m["oracle"]
        table.append({"scenario": name, "static-best_s": sb, "oracle_s": o,
                      **{p: (sb - m[p]) / (sb - o) for p in labels if p in m}})  # fmt: skip
    table = pd.DataFrame(table)
    print(f"seeds {seeds}; experts: {', '.join(ADAPTIVE)}"
          f"{'' if args.no_statics else ' and every static point'}\n")  # fmt: skip
    print(markdown(pd.DataFrame(picks)))
    print()
    short = ["scenario", "best adaptive", "best expert"]
    short += [f"window {w:g}s free" for w in windows] + [f"window {w:g}s pays" for w in windows]
    print(markdown(table[short]))
    rng = np.random.default_rng(0)
    rows = []
    for p in labels:
        est, lo, hi = six_trace_mean(per_seed_all, p, rng)
        rows.append({"ceiling": p, "mean_gap_closed": est, "ci_lo": lo, "ci_hi": hi})
    n = len(per_seed_all)
    print(f"\n## Mean over {n} scenarios (95 % bootstrap, seeds resampled together)\n")
    print(markdown(pd.DataFrame(rows)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
