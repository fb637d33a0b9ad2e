"""Interactive figures (Plotly) for reports, light enough for 100,000-frame runs.

Plotly was chosen because it is well kept, its hover, legend toggling, zoom and
dropdowns need no server, and its whole JavaScript bundle embeds into the page
(the :class:`~adaptsim.report.page.Page` writes it once; figures here only carry
data), so a report opens offline with no CDN. The bundle is ~4.7 MB, which leaves
room under the 10 MB page budget for the data.

Colours: the Okabe-Ito palette (safe for the common colour-vision deficiencies),
one fixed colour per policy on every chart (:func:`policy_colours`); conditions
are drawn in greys with line styles, so they never look like a policy.

Large runs are downsampled *honestly*, and every helper says what it did (the
returned note goes on the page): a CDF keeps exact quantiles at evenly spaced
probabilities; a latency timeline keeps, per time bin, the fastest and slowest
frame (so spikes and the envelope stay exact); a split-point timeline keeps every
change of split.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from adaptsim.report.page import Block

__all__ = [
    "OKABE_ITO",
    "STAGES",
    "cdf_figure",
    "cdf_points",
    "envelope",
    "figure_block",
    "policy_colours",
    "stage_figure",
    "stage_means",
    "timeline_figure",
]

# Okabe & Ito (2008), "Color Universal Design": black, orange, sky blue, bluish
# green, yellow, blue, vermillion, reddish purple.
OKABE_ITO = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
# The built-in policies keep their colour across every report; yellow comes last
# (it is the hardest to see on white).
_FIXED = {
    "static-best": "#000000",
    "oracle": "#56B4E9",
    "reactive": "#D55E00",
    "all-edge": "#009E73",
    "all-cloud": "#E69F00",
}
_BASELINE_DASH = {"static-best": "dash", "oracle": "dot"}
_SPARE = ("#0072B2", "#CC79A7", "#F0E442")
_DASHES = ("solid", "dash", "dot", "dashdot")

# Per-frame stage columns of the records, in the order a frame meets them.
STAGES = (
    ("edge_wait_s", "edge wait"),
    ("edge_s", "edge compute"),
    ("uplink_wait_s", "uplink wait"),
    ("uplink_s", "uplink transfer"),
    ("cloud_wait_s", "cloud wait"),
    ("cloud_s", "cloud compute"),
)

_LAYOUT = dict(
    template="simple_white",
    font=dict(family="system-ui, sans-serif", size=13),
    hoverlabel=dict(namelength=-1),
    margin=dict(l=70, r=20, t=40, b=50),
    legend=dict(title_text="policy (click to hide)"),
)


def policy_colours(policies: Sequence[str]) -> dict[str, str]:
    """Policy -> colour, stable for the built-ins; others take the spare Okabe-Ito colours."""
    out, spare = {}, [c for c in _SPARE]
    extra = [c for c in OKABE_ITO if c not in _FIXED.values() and c not in spare]
    pool = spare + extra
    k = 0
    for p in policies:
        if p in _FIXED:
            out[p] = _FIXED[p]
        else:
            out[p] = pool[k % len(pool)] if pool else OKABE_ITO[k % len(OKABE_ITO)]
            k += 1
    return out


def _dash(policies: Sequence[str], p: str) -> str:
    """Line style: the baselines dashed and dotted (a practical policy that does the
    same as one stays visible on top of it); beyond the palette, styles tell apart
    policies whose colours repeat."""
    if p in _BASELINE_DASH:
        return _BASELINE_DASH[p]
    unfixed = [q for q in policies if q not in _FIXED]
    i = unfixed.index(p) if p in unfixed else 0
    return _DASHES[(i // 3) % len(_DASHES)]


def cdf_points(latency_s: np.ndarray, n_total: int, max_points: int = 1000):
    """(latencies, shares) of the empirical CDF over ``n_total`` frames.

    Unfinished frames (non-finite latency) stay in the denominator, so the curve
    ends below 1 by their share. With more finished frames than ``max_points`` the
    curve is sampled at exact quantiles of evenly spaced probabilities.

    Returns:
        (x, y, downsampled)
    """
    lat = np.sort(latency_s[np.isfinite(latency_s)])
    n = len(lat)
    if n == 0 or n_total == 0:
        return np.array([]), np.array([]), False
    if n <= max_points:
        return lat, np.arange(1, n + 1) / n_total, False
    ranks = np.unique(np.linspace(1, n, max_points).round().astype(int))
    return lat[ranks - 1], ranks / n_total, True


def envelope(t_s: np.ndarray, y: np.ndarray, max_points: int):
    """Per time bin the frame with the lowest and the one with the highest ``y``.

    Keeps every frame when there are at most ``max_points``; otherwise splits the
    time range into ``max_points // 2`` bins. Returns ``(t, y, bin_s)`` with
    ``bin_s`` 0 when nothing was dropped.
    """
    if len(t_s) <= max_points:
        return t_s, y, 0.0
    bins = max(max_points // 2, 1)
    lo_t, hi_t = float(t_s.min()), float(t_s.max())
    bin_s = (hi_t - lo_t) / bins or 1.0
    b = np.minimum(((t_s - lo_t) / bin_s).astype(int), bins - 1)
    frame = pd.DataFrame({"b": b, "y": y, "i": np.arange(len(y))})
    keep = np.unique(
        np.concatenate(
            [
                frame.loc[frame.groupby("b")["y"].idxmin(), "i"],
                frame.loc[frame.groupby("b")["y"].idxmax(), "i"],
            ]
        )
    )
    return t_s[keep], y[keep], bin_s


def figure_block(
    fig: go.Figure, div_id: str, caption: str, md: str = "", toggle: bool = True
) -> Block:
    """A figure as a page block: its data (JSON) and a caption; Plotly's JS is the page's.

    The page draws a figure when it comes near the screen (and all of them before
    printing), so a long report is readable at once and draws its charts as the
    reader scrolls. ``toggle`` lets the page's policy checkboxes show and hide its
    traces (matched by ``legendgroup``).
    """
    # Safe inside <script>: no "</script>" nor "<!--" can end or upset it (JSON escapes).
    spec = pio.to_json(fig, validate=False).replace("</", "<\\/").replace("<!--", "<\\u0021--")
    height = int(fig.layout.height or 450)
    attr = " data-policy-toggle" if toggle else ""
    return Block(
        f'<figure class="plot"{attr}><div id="{div_id}" class="plotly-graph-div lazy-plot" '
        f'style="height:{height}px;width:100%"></div>'
        f'<script type="application/json" id="{div_id}-spec">{spec}</script>'
        f'<figcaption class="note">{html.escape(caption)}</figcaption></figure>',
        md or f"*{caption}* (interactive in report.html)",
        frozenset(t.type for t in fig.data),
    )


def cdf_figure(
    records: pd.DataFrame, colours: Mapping[str, str], deadline_s: float, max_points: int = 1000
) -> tuple[go.Figure, str]:
    """Latency CDF per policy, all seeds pooled; returns the figure and its note."""
    fig = go.Figure()
    policies = list(colours)
    sampled = False
    hi = deadline_s
    for p in policies:
        r = records[records["policy"] == p]
        if r.empty:
            continue
        lat = r["latency_s"].to_numpy(dtype=float)
        x, y, d = cdf_points(lat, len(lat), max_points)
        sampled |= d
        if len(x):
            hi = max(hi, float(np.percentile(x, 99.5)))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                line=dict(shape="hv", color=colours[p], width=2.2, dash=_dash(policies, p)),
                name=p,
                legendgroup=p,
                hovertemplate=f"{html.escape(p)}<br>%{{y:.1%}} of frames within %{{x:.3f}} s"
                "<extra></extra>",
            )
        )
    fig.add_vline(
        x=deadline_s,
        line=dict(color="#777", dash="dash", width=1),
        annotation_text=f"deadline {deadline_s:g} s",
        annotation_position="bottom right",
    )
    fig.update_layout(
        **_LAYOUT,
        height=420,
        xaxis=dict(title="end-to-end latency (s)", range=[0, hi * 1.05], showgrid=True),
        yaxis=dict(title="share of frames", tickformat=".0%", range=[0, 1.02], showgrid=True),
        hovermode="closest",
    )
    note = "All seeds pooled; frames that never finished count in the total, so a curve "
    note += "that ends below 100 % is missing exactly their share."
    if sampled:
        note += f" Each curve shows {max_points} exact quantiles, not every frame."
    return fig, note


def _step_series(steps: Sequence[Sequence[float]], end_s: float):
    t = [float(s[0]) for s in steps] + [end_s]
    v = [float(s[1]) for s in steps]
    return t, [*v, v[-1]] if v else v


def timeline_figure(
    records: pd.DataFrame,
    colours: Mapping[str, str],
    traces: Mapping[str, Sequence[Sequence[float]]],
    duration_s: float,
    deadline_s: float,
    shown: str,
    max_points: int = 2000,
) -> tuple[go.Figure, str]:
    """Conditions on top, then the split point and the latency of one policy at a time.

    ``records`` holds one seed. A dropdown selects the policy (``shown`` first), or
    all of them; the conditions stay. Returns the figure and its downsampling note.
    """
    policies = [p for p in colours if (records["policy"] == p).any()]
    stress = [
        (k, label, dash)
        for k, label, dash in (
            ("edge_cpu_pct", "edge CPU stress (%)", "dash"),
            ("edge_mem_pct", "edge memory stress (%)", "dot"),
        )
        if traces.get(k) and any(float(s[1]) != 0 for s in traces[k])
    ]
    rows = 3 + bool(stress)
    titles = ["bandwidth (Mbit/s)"] + (["edge stress (%)"] if stress else [])
    titles += ["partition point", "latency (s)"]
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=[0.22] + ([0.14] if stress else []) + [0.24, 0.4],
        subplot_titles=titles,
    )
    fixed = 0
    if traces.get("bandwidth_mbps"):
        t, v = _step_series(traces["bandwidth_mbps"], duration_s)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=v,
                mode="lines",
                line=dict(shape="hv", color="#444", width=1.5),
                name="bandwidth",
                legendgroup="conditions",
                showlegend=False,
                hovertemplate="%{y:.2f} Mbit/s from %{x:.1f} s<extra>bandwidth</extra>",
            ),
            row=1,
            col=1,
        )
        fixed += 1
    for k, label, dash in stress:
        t, v = _step_series(traces[k], duration_s)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=v,
                mode="lines",
                line=dict(shape="hv", color="#777", dash=dash, width=1.5),
                name=label,
                legendgroup="conditions",
                showlegend=False,
                hovertemplate=f"%{{y:.0f}} % from %{{x:.1f}} s<extra>{label}</extra>",
            ),
            row=2,
            col=1,
        )
        fixed += 1
    p_row, l_row = rows - 1, rows
    binned = 0.0
    unfinished = 0
    per_policy = []
    for p in policies:
        r = records[records["policy"] == p].sort_values("arrival_s")
        t = r["arrival_s"].to_numpy(dtype=float)
        point = r["point"].to_numpy()
        change = np.r_[True, point[1:] != point[:-1]]
        change[-1] = True
        lat = r["latency_s"].to_numpy(dtype=float)
        fin = np.isfinite(lat)
        lt, ly, bin_s = envelope(t[fin], lat[fin], max_points)
        binned = max(binned, bin_s)
        vis = p == shown
        fig.add_trace(
            go.Scatter(
                x=np.r_[t[change], duration_s],
                y=np.r_[point[change], point[-1]],
                mode="lines",
                line=dict(shape="hv", color=colours[p], width=2),
                name=p,
                legendgroup=p,
                visible=vis,
                hovertemplate=f"{html.escape(p)}: point %{{y}} from %{{x:.1f}} s<extra></extra>",
            ),
            row=p_row,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=lt,
                y=ly,
                mode="markers",
                marker=dict(color=colours[p], size=5),
                name=p,
                legendgroup=p,
                showlegend=False,
                visible=vis,
                hovertemplate=f"{html.escape(p)}: %{{y:.3f}} s at %{{x:.1f}} s<extra></extra>",
            ),
            row=l_row,
            col=1,
        )
        # Frames that never finished: a cross above the drawn latencies, never left out.
        top = float(np.nanmax(lat[fin])) * 1.08 if fin.any() else deadline_s
        fig.add_trace(
            go.Scatter(
                x=t[~fin],
                y=np.full(int((~fin).sum()), top),
                mode="markers",
                marker=dict(color=colours[p], symbol="x", size=8),
                name=p,
                legendgroup=p,
                showlegend=False,
                visible=vis,
                hovertemplate=f"{html.escape(p)}: arrived %{{x:.1f}} s, never finished"
                "<extra></extra>",
            ),
            row=l_row,
            col=1,
        )
        unfinished += int((~fin).sum())
        per_policy.append(p)
    fig.add_hline(y=deadline_s, line=dict(color="#777", dash="dash", width=1), row=l_row, col=1)
    n_pol = len(per_policy)

    def visible(which: str | None) -> list[bool]:
        return [True] * fixed + [which is None or p == which for p in per_policy for _ in range(3)]

    buttons = [
        dict(label=p, method="update", args=[{"visible": visible(p)}]) for p in per_policy
    ] + [dict(label="all policies", method="update", args=[{"visible": visible(None)}])]
    active = per_policy.index(shown) if shown in per_policy else n_pol
    fig.update_layout(
        **{**_LAYOUT, "legend": dict(title_text="policy")},
        height=260 + 170 * rows,
        updatemenus=[
            dict(
                buttons=buttons,
                active=active,
                x=0,
                y=1.09,
                xanchor="left",
                yanchor="bottom",
                showactive=True,
                pad=dict(r=4, t=2),
            )
        ],
        hovermode="closest",
    )
    fig.update_xaxes(showgrid=True)
    fig.update_yaxes(showgrid=True)
    fig.update_xaxes(title_text="time (s)", row=l_row, col=1)
    fig.update_yaxes(rangemode="tozero", row=l_row, col=1)
    note = "Choose the policy in the menu above the chart (or all of them); the conditions stay."
    if unfinished:
        note += f" Crosses above the latencies: {unfinished} frames that never finished."
    if binned:
        note += (
            f" Downsampled: per {binned:.3g} s bin the fastest and slowest frame are drawn "
            f"(at most {max_points} points a policy); splits are drawn at every change."
        )
    return fig, note


def stage_means(records: pd.DataFrame, policies: Sequence[str]) -> pd.DataFrame:
    """Mean seconds per stage and policy over the finished frames (all seeds pooled)."""
    fin = records[np.isfinite(records["latency_s"].to_numpy(dtype=float))]
    cols = [c for c, _ in STAGES]
    m = fin.groupby("policy", sort=False)[cols].mean()
    return m.reindex([p for p in policies if p in m.index])


def stage_figure(means: pd.DataFrame, colours: Mapping[str, str]) -> go.Figure:
    """Grouped bars: per stage, one bar per policy (its colour), mean seconds."""
    fig = go.Figure()
    labels = [label for _, label in STAGES]
    for p, row in means.iterrows():
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[row[c] for c, _ in STAGES],
                name=str(p),
                legendgroup=str(p),
                marker=dict(color=colours[p], line=dict(color="#222", width=0.5)),
                hovertemplate=f"{html.escape(str(p))}<br>%{{x}}: %{{y:.3f}} s<extra></extra>",
            )
        )
    fig.update_layout(
        **_LAYOUT,
        barmode="group",
        height=400,
        yaxis=dict(title="mean time per frame (s)", showgrid=True),
        xaxis=dict(title="stage"),
        hovermode="closest",
    )
    return fig
