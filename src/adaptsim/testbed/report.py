"""The validation report: ``report.html`` and ``report.md`` of a validation folder.

Built with the shared report module (:mod:`adaptsim.report`: the same page,
tables and figures as ``adaptsim report``), and only from the folder's own files
(``comparison.csv``, ``stages.csv``, ``comparison_folded.csv``,
``comparison_probed.csv``, ``comparison_folded_plain.csv``,
``validation.json``, ``real/`` and ``simulated/`` records), so the page says
exactly what the CSVs hold and can be rebuilt from a folder at any time
(:func:`write_validation_report`). The HTML and the markdown hold the same
numbers; the HTML adds the overlaid timelines.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from adaptsim.report import Cell, Page, Table, fmt_number, fmt_pct, note, paragraph, table
from adaptsim.report.figures import STAGES, figure_block, policy_colours
from adaptsim.testbed.compare import ranking
from adaptsim.testbed.foldback import CENTRE_WORDS, fold_back_facts
from adaptsim.testbed.folder import (
    COMPARED,
    host_speed_facts,
    scored_source,
    validation_facts,
    validation_records,
    validation_table,
)

__all__ = ["STAGE_LABELS", "validation_page", "write_validation_report"]

_COMPARED = COMPARED  # the comparison tables' columns the page reads

# The run report's own words for each stage (adaptsim.report.figures.STAGES), so a
# validation page and a run page name a stage the same; plus the two this page adds.
STAGE_LABELS = {
    **dict(STAGES),
    "latency_s": "end to end",
    "return_s (real only)": "way back (real only)",
}


def _s(v: float, key: str) -> Cell:
    """Seconds shown in ms (3 decimals of a second would hide LeNet's differences)."""
    v = float(v)
    return Cell(fmt_number(v * 1e3, 1), v, key)


def _pct(v: float, key: str) -> Cell:
    v = float(v)
    return Cell(fmt_pct(v, 1, signed=True), v if math.isfinite(v) else None, key)


def _rate(v: float, key: str) -> Cell:
    v = float(v)
    return Cell(fmt_pct(v * 100, 1), v, key)


def _policy_table(t: pd.DataFrame, table_id: str, caption: str) -> Table:
    cols = ["policy", "frames"]
    for stat in ("mean", "p50", "p95"):
        cols += [f"{stat} measured (ms)", f"{stat} simulated (ms)", f"{stat} error"]
    cols += ["miss rate measured", "miss rate simulated"]
    draws = "simulated_p95_s_p10" in t
    if draws:  # the twin's noise draws: p95's spread, and the single draw's errors
        cols += ["p95 draws 10 % (ms)", "p95 draws 90 % (ms)", "mean error, one draw",
                 "p95 error, one draw"]  # fmt: skip
    tab = Table(cols, caption=caption, table_id=table_id)
    pre = "" if table_id == "comparison" else f"{table_id}/"  # the data keys of the cells
    for _, r in t.iterrows():
        p = r["policy"]
        cells: list[Cell | str] = [p, Cell(str(int(r["frames"])), float(r["frames"]))]
        for stat in ("mean", "p50", "p95"):
            cells += [
                _s(r[f"measured_{stat}_s"], f"{pre}{p}/measured_{stat}_s"),
                _s(r[f"simulated_{stat}_s"], f"{pre}{p}/simulated_{stat}_s"),
                _pct(r[f"{stat}_error_pct"], f"{pre}{p}/{stat}_error_pct"),
            ]
        cells += [
            _rate(r["measured_miss_rate"], f"{pre}{p}/measured_miss_rate"),
            _rate(r["simulated_miss_rate"], f"{pre}{p}/simulated_miss_rate"),
        ]
        if draws:
            cells += [
                _s(r["simulated_p95_s_p10"], f"{pre}{p}/simulated_p95_s_p10"),
                _s(r["simulated_p95_s_p90"], f"{pre}{p}/simulated_p95_s_p90"),
                _pct(r["single_mean_error_pct"], f"{pre}{p}/single_mean_error_pct"),
                _pct(r["single_p95_error_pct"], f"{pre}{p}/single_p95_error_pct"),
            ]
        tab.add(*cells)
    return tab


def _stage_table(stages: pd.DataFrame) -> Table:
    tab = Table(
        [
            "policy",
            "stage",
            "measured (ms)",
            "simulated (ms)",
            "simulated - measured (ms)",
            "error",
        ],
        caption="Mean seconds per stage (finished frames): where the error sits.",
        table_id="stages",
    )
    for _, r in stages.iterrows():
        key = f"{r['policy']}/{r['stage']}"
        tab.add(
            r["policy"],
            STAGE_LABELS.get(r["stage"], r["stage"]),
            _s(r["measured_s"], f"{key}/measured_s"),
            _s(r["simulated_s"], f"{key}/simulated_s"),
            _s(r["diff_s"], f"{key}/diff_s"),
            _pct(r["error_pct"], f"{key}/error_pct"),
        )
    return tab


def _fold_table(
    before: pd.DataFrame,
    after: pd.DataFrame,
    was: str = "before",
    now: str = "after",
    table_id: str = "fold-back",
) -> Table:
    cols = ["policy"]
    for stat in ("mean", "p50", "p95"):
        cols += [f"{stat} error {was}", f"{stat} error {now}"]
    cols += [f"miss rate diff {was}", f"miss rate diff {now}"]
    tab = Table(
        cols,
        caption=f"Simulated vs measured, in %: {was} and {now}"
        + (" the fold-back." if table_id == "fold-back" else "."),
        table_id=table_id,
    )
    a = after.set_index("policy")
    tag = "" if table_id == "fold-back" else f"{table_id}/"  # the data keys of the cells
    for _, r in before.iterrows():
        p = r["policy"]
        if p not in a.index:
            continue
        cells: list[Cell | str] = [p]
        for stat in ("mean", "p50", "p95"):
            c = f"{stat}_error_pct"
            cells += [_pct(r[c], f"{p}/{tag}{was}/{c}"), _pct(a.loc[p, c], f"{p}/{tag}{now}/{c}")]
        cells += [
            _pct(r["miss_rate_diff"] * 100, f"{p}/{tag}{was}/miss_rate_diff"),
            _pct(a.loc[p, "miss_rate_diff"] * 100, f"{p}/{tag}{now}/miss_rate_diff"),
        ]
        tab.add(*cells)
    return tab


def _speed_table(host_speed: dict) -> Table:
    """Per policy run: the probes' medians, the calibration's prediction, the speed."""
    tab = Table(
        ["run (policy/seed)", "edge probes", "edge median (ms)", "edge predicted (ms)",
         "edge speed", "cloud probes", "cloud median (ms)", "cloud predicted (ms)",
         "cloud speed", "during the run (skipped)", "edge speed over the run"],
        caption="The host's speed per policy run: the median of probe seconds / the "
        "calibration's at the conditions each ran under (before and after the run: no "
        "stress; during it, with --probe-every: the levels in place); predicted: at no "
        "stress. Over the run: the running median's range, where it probed during it.",
        table_id="host-speed",
    )  # fmt: skip

    def speed(v, key: str) -> Cell | str:
        return "n/a" if v is None else Cell(f"x{float(v):.3f}", float(v), key)

    def ms(v, key: str) -> Cell | str:
        return "n/a" if v is None else _s(v, key)

    for run, p in host_speed.items():
        tab.add(
            run,
            str(len(p.get("edge_s") or [])),
            ms(p.get("edge_median_s"), f"{run}/edge_median_s"),
            ms(p.get("edge_predicted_s"), f"{run}/edge_predicted_s"),
            speed(p.get("edge"), f"{run}/edge_speed"),
            str(len(p.get("cloud_s") or [])),
            ms(p.get("cloud_median_s"), f"{run}/cloud_median_s"),
            ms(p.get("cloud_predicted_s"), f"{run}/cloud_predicted_s"),
            speed(p.get("cloud"), f"{run}/cloud_speed"),
            f"{(p.get('at') or []).count('during')} ({p.get('skipped', 0)})"
            if "skipped" in p
            else "none",
            _range(p.get("edge_speed_steps")),
        )
    return tab


def _range(steps) -> str:
    """``x0.95-1.21`` over a speed's steps; ``-`` for none."""
    if not steps:
        return "-"
    values = [v for _, v in steps]
    return f"x{min(values):.3f}-{max(values):.3f}"


def _timeline(
    real: pd.DataFrame, sim: pd.DataFrame, colours: dict[str, str], applied: dict, seed: int
) -> go.Figure:
    """Bandwidth as tc applied it, then each frame's latency: measured solid, simulated dotted."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.25, 0.75],
        subplot_titles=[
            "bandwidth applied by tc (Mbit/s; none: remote cloud)",
            "latency per frame (s), by arrival",
        ],
    )
    steps = [s for s in next(iter(applied.values()), []) if s[1] is not None]
    if steps:
        end = float(max(real["arrival_s"].max(), sim["arrival_s"].max(), steps[-1][0]))
        t = [float(s[0]) for s in steps] + [end]
        v = [float(s[1]) for s in steps] + [float(steps[-1][1])]
        fig.add_trace(
            go.Scatter(
                x=t,
                y=v,
                mode="lines",
                line=dict(shape="hv", color="#444"),
                name="bandwidth",
                showlegend=False,
            ),
            row=1,
            col=1,
        )
    for p, colour in colours.items():
        for frame, kind, dash in ((real, "measured", "solid"), (sim, "simulated", "dot")):
            r = frame[(frame["policy"] == p) & (frame["seed"] == seed)].sort_values("arrival_s")
            lat = r["latency_s"].to_numpy(dtype=float)
            fig.add_trace(
                go.Scatter(
                    x=r["arrival_s"].to_numpy(dtype=float).tolist(),
                    y=[v if math.isfinite(v) else None for v in lat.tolist()],  # never finished
                    mode="lines+markers",
                    line=dict(color=colour, dash=dash, width=1.5),
                    marker=dict(size=4),
                    name=f"{p} {kind}",
                    legendgroup=p,
                    hovertemplate=f"%{{y:.4f}} s at %{{x:.2f}} s<extra>{p} {kind}</extra>",
                ),
                row=2,
                col=1,
            )
    fig.update_xaxes(title_text="time since the run's start (s)", row=2, col=1)
    fig.update_layout(height=560, margin=dict(l=60, r=20, t=40, b=50))
    return fig


def validation_page(folder: Path) -> Page:
    """The validation report of ``folder`` as a :class:`~adaptsim.report.Page` (from its files)."""
    folder = Path(folder)
    scored_source(folder)  # the facts, probes, real records and summary, checked together
    facts = validation_facts(folder, needs=("ranking", "placement", "load_average"))
    comp = validation_table(folder, "comparison.csv", _COMPARED)
    stages = validation_table(folder, "stages.csv")
    real = validation_records(folder, "real")
    sim = validation_records(folder, "simulated")
    colours = policy_colours(comp["policy"].tolist())
    rank = facts["ranking"]
    p = facts["placement"]
    page = Page(
        f"Validation: {Path(facts['scenario']).stem}, real run vs simulated twin",
        f"calibration {facts['calibration']}; {facts['duration_s']:g} s of real time per run; "
        f"traces x{facts['time_scale']:g} faster; seeds {facts['seeds']}",
        colours,
    )
    if facts.get("interrupted"):  # a reader sees first that runs are missing
        page.section("Interrupted", "interrupted").add(
            paragraph(
                f"The real runs were stopped early ({facts.get('interrupted_by') or 'interrupted'}"
                f"): {facts.get('runs_finished', '?')} of {facts.get('runs_planned', '?')} "
                "policy runs finished; only those are compared on this page."
            )
        )
    s = page.section("Per policy", "policies")
    s.add(
        paragraph(
            "Error = (simulated - measured) / measured: positive when the simulator is "
            "pessimistic. The targets: mean within 10 %, p95 within 15 %."
            + (
                f" Simulated = the median over the twin's {int(comp['noise_draws'].iloc[0])} "
                "service-noise draws (the same arrivals, monitor and traces); the draws' "
                "10-90 % spread of p95 and the single draw's errors are beside it."
                if "noise_draws" in comp
                else ""
            )
        ),
        table(_policy_table(comp, "comparison", "Measured vs simulated latency per policy.")),
        paragraph(
            f"Ranking by mean, measured: {' < '.join(rank['measured'])}; simulated: "
            f"{' < '.join(rank['simulated'])}; {'the same' if rank['same'] else 'different'}; "
            f"Kendall's tau {fmt_number(rank['kendall_tau'], 2)}; " + _discordant(rank)
        ),
    )
    page.section("Where the error sits", "stages").add(
        table(_stage_table(stages)),
        note(
            "The way back is the result's return as measured beyond the added latency "
            "(socket, Python); the simulator has no such stage."
        ),
    )
    seed = int(facts["seeds"][0])
    fig = _timeline(real, sim, colours, facts.get("applied", {}), seed)
    page.section("Timelines, real and simulated", "timelines").add(
        figure_block(
            fig,
            "timeline",
            f"Seed {seed}: each frame's latency by its arrival, "
            "measured (solid) and simulated (dotted), under the bandwidth tc applied.",
            md=f"*Seed {seed}: per-frame latency, measured vs simulated, overlaid "
            "(interactive in report.html).*",
        )
    )
    host_speed = host_speed_facts(folder, facts)
    if host_speed and (folder / "comparison_probed.csv").is_file():
        probed = validation_table(folder, "comparison_probed.csv", _COMPARED)
        page.section("The twin at the probed host speed", "probed").add(
            paragraph(
                f"Before and after each policy run ({facts.get('probe_frames', '?')} probe "
                "frames per role each time, no stress, the link idle) the edge ran the whole "
                "model and the cloud its whole tail; a run's host speed is the median probe "
                "over the calibration's prediction at no stress. The probed twin simulates "
                "each policy run with the edge's and the cloud's compute times that run's "
                "speed (one scalar per role, nothing else changed). It is not fitted on the "
                "scored frames: the probes are frames of their own, timed between runs. "
                f"With --probe-every ({facts.get('probe_every_s') or 0:g} s here) the edge "
                "also probed during each run in its idle gaps, under the run's conditions, "
                "and the twin scales each frame by the speed at its arrival (a running "
                f"median over time; pool: {facts.get('probe_pool', 'run')})."
            ),
            table(_speed_table(host_speed)),
            table(
                _policy_table(
                    probed, "comparison-probed", "Measured vs the twin at the probed host speed."
                )
            ),
            table(_fold_table(comp, probed, "plain twin", "probed twin", "probed")),
            paragraph(
                f"Ranking at the probed speed: "
                f"{' < '.join(probed.sort_values('simulated_mean_s')['policy'])}; "
                + _discordant(ranking(probed))
            ),
        )
    fb_facts = facts.get("fold_back")
    if fb_facts is not None and (folder / "comparison_folded.csv").is_file():
        fb = fold_back_facts(folder, fb_facts)  # a term an older file lacks: its default
        after = validation_table(folder, "comparison_folded.csv", _COMPARED)
        page.section("Before and after the fold-back", "fold-back").add(
            paragraph(
                f"Fitted on {fb_facts['from']} (another run, {fb.frames} frames): edge "
                f"x{fb.edge_scale:.3g}, cloud x{fb.cloud_scale:.3g}, link overhead "
                f"{fb.uplink_extra_s * 1e3:+.2f} ms, way back {fb.return_s * 1e3:.2f} ms, "
                f"pause {fb.pause_s * 1e3:.2f} ms per switch; the conditions in place late "
                f"after the trace's step (medians, up / down): link {_lags(fb, 'link')}, edge "
                f"CPU stress {_lags(fb, 'cpu')}, edge memory stress {_lags(fb, 'mem')}."
                + _per_level("Edge", fb.edge_scale_by_cpu)
                + _per_level(
                    "Cloud (by the edge CPU stress in place when its stage started)",
                    fb.cloud_scale_by_cpu,
                )
                + (
                    " Relative to the host's speed: the scales above are over the fit run's "
                    f"probed speed (its median: edge x{fb.fit_edge_speed:.3g}, cloud "
                    f"x{fb.fit_cloud_speed:.3g}), and each policy run's twin gets them times "
                    "its own probed speed."
                    if fb.host_relative
                    else ""
                )
                + _centre_line(fb)
            ),
            table(_fold_table(comp, after)),
            paragraph(
                f"Ranking after: {' < '.join(after.sort_values('simulated_mean_s')['policy'])}; "
                + _discordant(ranking(after))
            ),
        )
        if (folder / "comparison_folded_plain.csv").is_file():
            plain = validation_table(folder, "comparison_folded_plain.csv", _COMPARED)
            page.sections[-1].add(
                paragraph(
                    "The same fold-back fitted without the probes (its scales carry the fit "
                    "run's host speed, as before the probe), against the one relative to the "
                    "host's speed:"
                ),
                table(_fold_table(plain, after, "plain fold-back", "relative", "fold-back-plain")),
            )
    how = [
        f"One-way latency: {facts['one_way_latency']}: the kernel here has no netem, so the "
        "cloud holds a frame that long after it is all in, and the edge adds it to a result's "
        "arrival.",
        f"A zero-rate step: {facts['zero_rate']}.",
        f"Edge on CPU {p['edge_cpus']} (1 TensorFlow thread"
        + (
            f", in a cgroup CPU quota of {p['edge_cpu_quota']:g} cores with its stress-ng: an "
            "emulated slower edge"
            if p.get("edge_cpu_quota")
            else ""
        )
        + f"); cloud on CPU {p['cloud_cpus']} "
        f"with {p['cloud_workers']} worker(s); memory stress on CPU {p['memory_stress_cpus']}.",
        "Load average when written: "
        + ", ".join(f"{x:.2f}" for x in facts["load_average"])
        + " (a shared machine slows the real compute).",
        *facts.get("notes", []),
    ]
    page.section("How it was run", "how").add(*(paragraph(line) for line in how))
    return page


def _centre_line(fb) -> str:
    """How the fold-back made one fit of its policy runs' own, and the runs far from it."""
    if not fb.run_scales:
        return ""
    how = CENTRE_WORDS.get(fb.centre, fb.centre)

    def x(v) -> str:
        return "-" if v is None else f"x{v:.3g}"

    runs = ", ".join(f"{k} {x(e)} / {x(c)}" for k, e, c in fb.run_scales)
    far = fb.outliers()
    return (
        f" The scales are {how} its {len(fb.run_scales)} policy runs' own (edge / cloud: "
        f"{runs}); " + ("runs more than 10 % from them: "
                        + ", ".join(f"{k} ({r})" for k, r, _, _ in far) + "." if far
                        else "none more than 10 % from them.")
    )  # fmt: skip


def _discordant(rank: dict) -> str:
    """The pairs the two order oppositely; pairs the twin ties do not count (tau does)."""
    n = rank.get("discordant_pairs")
    if n is None:
        return "pairs ordered oppositely: not recorded."
    return (f"{n} pair{'s' if n != 1 else ''} of policies ordered oppositely (pairs the twin "
            "ties, running the same split every frame, not counted).")  # fmt: skip


def write_validation_report(folder: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into a validation folder, from its files."""
    return validation_page(folder).write(folder)


def _lags(fb, kind: str) -> str:
    """A kind's fold-back lags, up / down, in seconds."""
    return f"{getattr(fb, f'{kind}_up_lag_s'):.3g} / {getattr(fb, f'{kind}_down_lag_s'):.3g} s"


def _per_level(what: str, levels) -> str:
    """A fold-back per edge CPU stress level, as a sentence (empty without one)."""
    if not levels:
        return ""
    parts = ", ".join(f"{cpu:g} % x{scale:.3g}" for cpu, scale in levels)
    return f" {what} per edge CPU stress level: {parts}."
