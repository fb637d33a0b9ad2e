"""Running a whole scenario (every policy x seed) and summarising the records.

Records are collected as lists during the run, turned into one DataFrame at the
end, and written as Parquet; the summary has one row per policy (all seeds
pooled): mean, p50, p95, p99 latency, deadline-miss rate, throughput, bytes sent,
re-partitions and time spent switching.

Every frame is accounted for. A frame whose transfer never ends (the uplink
stalls for good) is *unfinished*: its latency is infinite in the records, it
counts as a deadline miss, and the summary gives the count and share of such
frames and flags the latency statistics (taken over the finished frames) as
``censored``. A frame dropped by admission control (``admission`` in the
scenario) is *dropped*: its latency is infinite too, it counts as a deadline
miss, and the summary gives ``dropped``, ``drop_rate`` and ``goodput_rps``
(frames delivered within their deadline per second). A run whose backlog grew
until its end (``drop: never`` and an overloaded stage) is flagged per policy
(``saturated_seeds``, ``saturated_at_s``, ``final_wait_s``; see
:mod:`adaptsim.simulator.saturation`) and :func:`saturation_warnings` says so.

A policy that fails in one run (a :class:`~adaptsim.simulator.decision.PolicyError`)
stops that policy; the other policies' runs go on and every finished run is
kept. Ctrl-C stops between runs; each policy's throughput divides by the seeds
it actually ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.atomic import StagedFolder, write_atomic
from adaptsim.errors import UserError
from adaptsim.files import load_json
from adaptsim.simulator.admission import Stage
from adaptsim.simulator.decision import PolicyError
from adaptsim.simulator.engine import RECORD_COLUMNS, Tables, run_policy
from adaptsim.simulator.saturation import Saturation, saturation
from adaptsim.simulator.scenario import Scenario

__all__ = [
    "Results",
    "add_conditions",
    "frame_stats",
    "is_results_folder",
    "results_folder",
    "run_saturation",
    "run_scenario",
    "saturation_warnings",
    "summarise",
    "write_results",
]

# the times a frame that never finishes never reaches (inf for it, not NaN)
_TIME_COLUMNS = tuple(c for c in RECORD_COLUMNS if c.endswith("_s") and c != "arrival_s")


@dataclass
class Results:
    scenario: Scenario
    records: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame  # one row per (policy, seed): repartitions, switching
    wall_s: float
    interrupted: bool = False
    errors: tuple[str, ...] = ()  # one line per policy that failed (its runs stopped)


_PROPAGATE: list[bool] = []  # non-empty: Ctrl-C ends run_scenario instead of being kept


@contextlib.contextmanager
def interrupts_propagate() -> Iterator[None]:
    """While the block runs, Ctrl-C (or :class:`~adaptsim.emulation.cleanup.Terminated`)
    in :func:`run_scenario` propagates instead of returning the runs that finished: for a
    caller simulating many scenarios (a twin's noise draws), where a partial one would
    be compared as whole and the next one would start anyway."""
    _PROPAGATE.append(True)
    try:
        yield
    finally:
        _PROPAGATE.pop()


def run_scenario(
    scenario: Scenario,
    progress: Callable[[str, int, int], None] | None = None,
) -> Results:
    """Simulate every policy with every seed (common random numbers across policies).

    Ctrl-C stops between runs and returns what finished, flagged ``interrupted``.
    """
    t0 = time.perf_counter()
    done_runs: list[tuple[pd.DataFrame, dict]] = []  # one append per run: Ctrl-C can't split it
    errors: list[str] = []
    # inf - inf (frames behind a link stalled for good) gives NaN parts, made inf below
    with np.errstate(invalid="ignore"):
        try:
            _run_all(scenario, progress, done_runs, errors)
            interrupted = False
        except KeyboardInterrupt:
            if _PROPAGATE:  # a caller that keeps its own work instead (validate's twin)
                raise
            interrupted = True
    frames = [f for f, _ in done_runs]
    runs = [r for _, r in done_runs]
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frames:  # runs that finished, possibly without a single frame (Poisson, short)
        finished = np.isfinite(records["done_s"].to_numpy(dtype=float))
        # A frame that never finishes never ends any stage it had not left: inf, not NaN.
        for c in _TIME_COLUMNS:
            v = records[c].to_numpy(dtype=float)
            records[c] = np.where(~finished & np.isnan(v), np.inf, v)
        records["finished"] = finished
        add_conditions(records, scenario)
    run_columns = ["policy", "seed", "repartitions", "switching_s"]
    if scenario.hedge is not None:
        run_columns.append("hedged")
    runs_frame = pd.DataFrame(runs, columns=run_columns)
    return Results(
        scenario,
        records,
        summarise(records, runs_frame, scenario),
        runs_frame,
        time.perf_counter() - t0,
        interrupted,
        tuple(errors),
    )


def add_conditions(records: pd.DataFrame, scenario: Scenario) -> None:
    """Add each frame's conditions at its arrival (the traces' values as written, which a
    real run's records hold too, also where a folded-back twin's world follows them late)
    and whether it met its deadline: the columns a simulated and a real run's records share."""
    t = records["arrival_s"].to_numpy()
    bw, cpu, mem = scenario.seen_traces()
    records["bandwidth_mbps"] = bw.at_many(t)
    records["edge_cpu_pct"] = cpu.at_many(t)
    records["edge_mem_pct"] = mem.at_many(t)
    records["deadline_met"] = records["latency_s"] <= scenario.deadline_s


def _run_all(scenario: Scenario, progress, done_runs: list, errors: list) -> None:
    """Every policy x seed; a policy that fails stops its own seeds, not the others."""
    tables = Tables(scenario)
    total = len(scenario.policies) * len(scenario.seeds)
    done = 0
    for spec in scenario.policies:
        for j, seed in enumerate(scenario.seeds):
            try:
                cols, stats, name = run_policy(scenario, spec, seed, tables)
            except PolicyError as exc:
                errors.append(str(exc))
                done += len(scenario.seeds) - j
                break
            except UserError as exc:  # e.g. a user policy class that fails to build this time
                errors.append(f"{exc} (policy {spec.label or spec.policy!r}, seed {seed})")
                done += len(scenario.seeds) - j
                break
            f = pd.DataFrame(cols)
            f.insert(0, "seed", seed)
            f.insert(0, "policy", name)
            run = {
                "policy": name,
                "seed": seed,
                "repartitions": stats.repartitions,
                "switching_s": stats.switching_s,
            }
            if scenario.hedge is not None:
                run["hedged"] = stats.hedged
            done_runs.append((f, run))
            done += 1
            if progress:
                progress(name, done, total)


def frame_stats(
    latency_s,
    done_s,
    payload_bytes,
    deadline_s: float,
    duration_s: float,
    n_seeds: int = 1,
    dropped=None,
) -> dict:
    """The summary statistics of a set of frames: one run's, or one policy's runs pooled.

    A frame is *finished* (delivered), *dropped* by admission control, or
    *unfinished* (still in a queue or a transfer that never ends). Latency
    statistics (mean, p50, p95, p99) cover the delivered frames only (``censored``
    says when some never finished); a dropped or unfinished frame counts as a
    deadline miss; throughput is frames finished within the duration per simulated
    second per seed, goodput the frames delivered within their deadline per
    simulated second per seed. Plain numpy, so a sweep can summarise each run
    without building a DataFrame (``dropped`` omitted or missing values: none dropped).
    """
    done = np.asarray(done_s, dtype=float)
    lat_all = np.asarray(latency_s, dtype=float)
    n = len(done)
    drop = _flags(dropped, n)
    finished = np.isfinite(done)
    lat = lat_all[finished]
    unfinished = int((~finished & ~drop).sum())
    n_dropped = int(drop.sum())
    met = lat_all <= deadline_s
    pct = np.percentile(lat, [50, 95, 99]) if len(lat) else [np.nan] * 3
    return {
        "requests": n,
        "finished": int(finished.sum()),
        "dropped": n_dropped,
        "drop_rate": n_dropped / n if n else 0.0,
        "unfinished": unfinished,
        "unfinished_share": unfinished / n if n else 0.0,
        "censored": unfinished > 0,  # latency statistics cover finished frames only
        "mean_s": float(np.mean(lat)) if len(lat) else np.nan,
        "p50_s": float(pct[0]),
        "p95_s": float(pct[1]),
        "p99_s": float(pct[2]),
        "deadline_miss_rate": float(1.0 - np.mean(met)) if n else np.nan,
        "throughput_rps": float((finished & (done <= duration_s)).sum() / (duration_s * n_seeds)),
        "goodput_rps": float(met.sum() / (duration_s * n_seeds)),
        "bytes_sent": float(np.sum(payload_bytes)),
    }


def _flags(values, n: int) -> np.ndarray:
    """A boolean array of n flags; ``None`` or missing values (a testbed's record) false."""
    if values is None:
        return np.zeros(n, dtype=bool)
    v = pd.Series(values, dtype=object).fillna(False)
    return v.astype(bool).to_numpy()


def run_saturation(records: pd.DataFrame, duration_s: float) -> dict[tuple[str, int], Saturation]:
    """The saturated runs of a results table, by (policy, seed) (see
    :mod:`adaptsim.simulator.saturation`); dropped frames are left out of the waits."""
    out: dict[tuple[str, int], Saturation] = {}
    if records.empty:
        return out
    waits = [c for c in ("edge_wait_s", "uplink_wait_s", "cloud_wait_s") if c in records]
    kept = records[~_flags(records.get("dropped"), len(records))]
    for (policy, seed), r in kept.groupby(["policy", "seed"], sort=False):
        r = r.sort_values("arrival_s", kind="stable")
        w = r[waits].to_numpy(dtype=float).sum(axis=1)
        sat = saturation(r["arrival_s"].to_numpy(dtype=float), w, duration_s)
        if sat is not None:
            out[(str(policy), int(seed))] = sat
    return out


def summarise(records: pd.DataFrame, runs: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """One row per policy, seeds pooled (re-partitions and switching summed over seeds)."""
    if runs.empty:
        return pd.DataFrame()
    rows = []
    saturated = run_saturation(records, scenario.duration_s)
    for policy in runs["policy"].unique():
        r = records[records["policy"] == policy]
        rr = runs[runs["policy"] == policy]
        n_seeds = int(rr["seed"].nunique())
        stats = frame_stats(
            r["latency_s"],
            r["done_s"],
            r["payload_bytes"],
            scenario.deadline_s,
            scenario.duration_s,
            n_seeds,
            r.get("dropped"),
        )
        sat = [v for (p, _), v in saturated.items() if p == policy]
        rows.append(
            {
                "policy": policy,
                "seeds": n_seeds,
                **stats,
                "repartitions": int(rr["repartitions"].sum()),
                "switching_s": float(rr["switching_s"].sum()),
                # seeds whose backlog grew until the end; the earliest onset, the worst wait
                "saturated_seeds": len(sat),
                "saturated_at_s": min((x.at_s for x in sat), default=np.nan),
                "final_wait_s": max((x.final_wait_s for x in sat), default=np.nan),
            }
        )
        if scenario.hedge is not None:
            rows[-1].update(_hedge_stats(r, bool(rr["hedged"].any()), scenario))
    out = pd.DataFrame(rows)
    if scenario.hedge is not None:
        _hedge_gaps(out, records)
    return out


def _hedge_stats(r: pd.DataFrame, hedged: bool, scenario: Scenario) -> dict:
    """A policy's race in a scenario that hedges: what it raced and what the losers cost
    (edge seconds and tensor bytes beyond the winners', per frame)."""
    n = max(len(r), 1)
    return {
        "hedge": scenario.hedge.describe() if hedged else "none (a bound: one path)",
        "raced_share": float(r["hedge_raced"].astype(bool).sum() / n),
        "extra_edge_s_per_frame": float(r["hedge_loser_edge_s"].sum() / n),
        "extra_uplink_bytes_per_frame": float(r["hedge_loser_uplink_bytes"].sum() / n),
    }


def _hedge_gaps(summary: pd.DataFrame, records: pd.DataFrame) -> None:
    """The gap closed in mean latency against both oracles, side by side: the paying
    oracle chooses one point per frame and pays the pause to move, which a race's second
    path does not, so it is no bound for a hedged policy (the gap closed may pass 1);
    ``oracle-free`` (one point per frame, moving free) is the fair yardstick; and, where
    the run has it, ``oracle-race`` (the oracle racing too, its primary chosen with the
    frame's draws, the pause paid: no tighter than ``oracle-free``)."""
    from adaptsim.scoring import ORACLE, ORACLE_FREE, ORACLE_RACE, gap_closed, per_seed_metrics

    per_seed = per_seed_metrics(records)
    oracles = [("vs_oracle", ORACLE), ("vs_oracle_free", ORACLE_FREE)]
    if ORACLE_RACE in set(summary["policy"]):  # the racing oracle, where the run has it
        oracles.append(("vs_oracle_race", ORACLE_RACE))
    for name, oracle in oracles:
        summary[f"gap_closed_{name}_mean_s"] = [
            gap_closed(per_seed, p, "mean_s", oracle=oracle).estimate for p in summary["policy"]
        ]


def saturation_warnings(summary: pd.DataFrame) -> list[str]:
    """One line per policy whose backlog grew without bound (from its summary row)."""
    out = []
    if summary.empty or "saturated_seeds" not in summary:
        return out
    for _, row in summary[summary["saturated_seeds"] > 0].iterrows():
        line = Saturation(row["saturated_at_s"], row["final_wait_s"]).sentence(row["policy"])
        if row["seeds"] > 1:
            line += f" ({row['saturated_seeds']} of {row['seeds']} seeds)"
        out.append(line)
    return out


def is_results_folder(path: Path) -> bool:
    """An empty folder, or one holding an adaptsim ``run.json`` (safe to replace)."""
    if not any(path.iterdir()):
        return True
    meta = path / "run.json"
    try:
        facts = load_json(meta, "run facts") if meta.is_file() else None
    except (OSError, UserError):  # unreadable, binary, malformed or nested too deeply
        return False
    return isinstance(facts, dict) and "scenario" in facts


def results_folder(
    target: str | Path, make_parent: bool = False, what: str = "--out"
) -> StagedFolder:
    """A staging folder for a run's results, swapped into ``target`` whole (checked now)."""
    return StagedFolder(target, what, is_results_folder, make_parent=make_parent)


def write_results(results: Results, out_dir: str | Path) -> list[Path]:
    """records.parquet, summary.csv and run.json (scenario facts) into ``out_dir``.

    The CLI writes into a :func:`results_folder` staging folder, so that the
    results folder is whole or absent.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sc = results.scenario
    meta = {
        "scenario": sc.name,
        "description": sc.description,
        "source": sc.source,
        "model": sc.model.model,
        "calibration": sc.calibration_name,
        "duration_s": sc.duration_s,
        "deadline_s": sc.deadline_s,
        "seeds": list(sc.seeds),
        "bandwidth_trace": sc.bandwidth.label,
        "edge_cpu_trace": sc.edge_cpu.label,
        "edge_mem_trace": sc.edge_mem.label,
        "pause_s": sc.pause_s,
        "admission": {
            "drop": sc.admission.drop.value,
            "queue_limit": {
                s.value: sc.admission.limit(s) for s in Stage if sc.admission.limit(s) is not None
            },
        },
        **({"hedge": dataclasses.asdict(sc.hedge)} if sc.hedge is not None else {}),
        "wall_s": round(results.wall_s, 3),
        "interrupted": results.interrupted,
        "errors": list(results.errors),
        "points": {
            str(int(o)): n for o, n in zip(sc.model.ordinals, sc.model.layer_names, strict=True)
        },
        "traces": {
            name: [[t, trace.at(t)] for t in trace.breakpoints(sc.duration_s)]
            for name, trace in (
                ("bandwidth_mbps", sc.bandwidth),
                ("edge_cpu_pct", sc.edge_cpu),
                ("edge_mem_pct", sc.edge_mem),
            )
        },
    }
    paths = [out / "records.parquet", out / "summary.csv", out / "run.json"]
    write_atomic(paths[0], lambda p: results.records.to_parquet(p, index=False))
    write_atomic(paths[1], lambda p: results.summary.to_csv(p, index=False))
    write_atomic(paths[2], lambda p: p.write_text(json.dumps(meta, indent=1)))
    return paths
