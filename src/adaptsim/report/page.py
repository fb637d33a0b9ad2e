"""The page skeleton every adaptsim report shares: sections, a table of contents, one
self-contained HTML file and its markdown twin.

A :class:`Page` is a title, a lead paragraph and a list of :class:`Section`; each
section is a list of :class:`Block`, and every block carries its HTML and its
markdown side by side, so ``report.html`` and ``report.md`` are written from the
same strings. Plotly's JavaScript is embedded once, in the page's head (no CDN, no
network): every figure block only carries its data. The JavaScript is plotly.js's
official *cartesian* partial bundle (1.5 MB, vendored in ``vendor/``) when it
holds every trace type on the page and matches the installed ``plotly``;
otherwise the full bundle (4.8 MB) that the ``plotly`` package ships. Each figure
is drawn when it comes near the screen (every one before printing), so a long page
is readable as soon as it loads.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from adaptsim.atomic import write_together
from adaptsim.report.tables import Table

__all__ = [
    "PARTIAL_TRACES",
    "Block",
    "Page",
    "Section",
    "code",
    "facts",
    "note",
    "paragraph",
    "plotly_js",
    "table",
    "warnings",
]

# Trace types in the vendored cartesian bundle (its README).
PARTIAL_TRACES = frozenset(
    {
        "bar",
        "box",
        "contour",
        "heatmap",
        "histogram",
        "histogram2d",
        "histogram2dcontour",
        "image",
        "pie",
        "scatter",
        "scatterternary",
        "violin",
    }
)
_PARTIAL = "vendor/plotly-cartesian.min.js"


def plotly_js(trace_types: frozenset[str] = frozenset()) -> tuple[str, str]:
    """Plotly's JavaScript for a page whose figures use ``trace_types``, and which it is.

    Returns:
        (script text, ``"cartesian"`` or ``"full"``)
    """
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    if trace_types <= PARTIAL_TRACES:
        ref = resources.files("adaptsim.report").joinpath(_PARTIAL)
        if ref.is_file():
            text = ref.read_text("utf-8")
            m = re.search(r"plotly\.js \(cartesian - minified\) v(\S+)", text[:400])
            if m and m.group(1) == get_plotlyjs_version():
                return text, "cartesian"
    return get_plotlyjs(), "full"


@dataclass(frozen=True)
class Block:
    """A piece of a section, in HTML and in markdown (same content, same numbers).

    ``traces``: the Plotly trace types a figure block draws (the page picks the
    JavaScript bundle that holds them all).
    """

    html: str
    md: str
    traces: frozenset[str] = frozenset()


@dataclass
class Section:
    """A titled part of the page; ``anchor`` is its id in the table of contents."""

    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self


def paragraph(text: str, css: str = "") -> Block:
    """Plain text (escaped); ``css`` names a class such as ``verdict``."""
    cls = f' class="{css}"' if css else ""
    return Block(f"<p{cls}>{html.escape(text)}</p>", text)


def note(text: str) -> Block:
    """A small-print remark (how a plot was downsampled, what a number leaves out)."""
    return Block(f'<p class="note">{html.escape(text)}</p>', f"*{text}*")


def warnings(lines: list[str]) -> Block:
    """Plain warnings in a box a reader cannot miss; nothing when there are none."""
    if not lines:
        return Block("", "")
    items = "".join(f"<li>{html.escape(w)}</li>" for w in lines)
    return Block(
        f'<div class="warn" role="note" aria-label="warnings"><strong>Warnings</strong>'
        f"<ul>{items}</ul></div>",
        "\n".join(f"> **Warning:** {w}" for w in lines),
    )


def facts(items: list[tuple[str, str]]) -> Block:
    """A definition list of ``(name, value)`` facts (model, traces, seeds...)."""
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return Block(f'<dl class="facts">{rows}</dl>', "\n".join(f"- **{k}:** {v}" for k, v in items))


def code(text: str) -> Block:
    """A command to copy (a ``pre`` block; fenced in markdown)."""
    return Block(f"<pre><code>{html.escape(text)}</code></pre>", f"```sh\n{text}\n```")


def table(t: Table) -> Block:
    return Block(t.html(), t.markdown())


_CSS = """
:root{--fg:#1b1b1b;--muted:#555;--rule:#d0d0d0;--bg:#fff;--accent:#0072B2;--warn:#fff4d6}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.7rem;margin:.2rem 0}h2{font-size:1.3rem;margin-top:2.2rem;
border-bottom:2px solid var(--rule);padding-bottom:.2rem}
a{color:var(--accent)}
p.lead{color:var(--muted);margin-top:0}
p.verdict{font-size:1.2rem;font-weight:600;border-left:6px solid var(--accent);
padding:.4rem .8rem;background:#eef6fb}
p.note{color:var(--muted);font-size:.9rem}
nav.toc{background:#f6f6f6;padding:.5rem 1rem;border-radius:6px}
nav.toc ol{margin:.3rem 0;padding-left:1.3rem;columns:2}
table.data{border-collapse:collapse;margin:.6rem 0;font-variant-numeric:tabular-nums}
table.data caption{text-align:left;color:var(--muted);font-size:.9rem;padding-bottom:.3rem}
table.data th,table.data td{padding:.3rem .7rem;border-bottom:1px solid var(--rule)}
table.data thead th{border-bottom:2px solid #888;text-align:right;vertical-align:bottom}
table.data thead th:first-child,table.data tbody th{text-align:left}
table.data td.num{text-align:right;white-space:nowrap}
table.data tbody tr:hover{background:#f3f7fa}
div.warn{background:var(--warn);border-left:6px solid #E69F00;padding:.5rem 1rem;margin:.8rem 0}
div.warn ul{margin:.3rem 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
pre{background:#f4f4f4;padding:.6rem .8rem;overflow-x:auto;border-radius:4px}
fieldset.toggle{border:1px solid var(--rule);border-radius:6px;margin:.8rem 0}
fieldset.toggle label{margin-right:1.1rem;white-space:nowrap;cursor:pointer}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.3em;
vertical-align:-.1em}
figure.plot{margin:.5rem 0}
@media print{nav.toc,fieldset.toggle{display:none}}
"""

# Figures are drawn when they come near the screen (before printing, all of them),
# with the traces of policies ticked off already hidden. Ticking a policy off hides
# its traces on every drawn chart that takes part (matched by legendgroup).
_PAGE_JS = """
(function () {
  var config = {displaylogo: false, responsive: true};
  function off() {
    var o = {};
    document.querySelectorAll('#policy-toggle input').forEach(function (b) {
      if (!b.checked) o[b.dataset.policy] = true;
    });
    return o;
  }
  function draw(div) {
    if (div.dataset.drawn) return;
    div.dataset.drawn = '1';
    var spec = JSON.parse(document.getElementById(div.id + '-spec').textContent);
    if (div.closest('figure[data-policy-toggle]')) {
      var o = off();
      spec.data.forEach(function (t) { if (o[t.legendgroup]) t.visible = 'legendonly'; });
    }
    Plotly.newPlot(div, spec.data, spec.layout, config);
  }
  var plots = Array.prototype.slice.call(document.querySelectorAll('.lazy-plot'));
  window.adaptsimDrawAll = function () { plots.forEach(draw); };
  window.addEventListener('beforeprint', window.adaptsimDrawAll);
  if ('IntersectionObserver' in window) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (e.isIntersecting) { seen.unobserve(e.target); draw(e.target); }
      });
    }, {rootMargin: '400px'});
    plots.forEach(function (d) { seen.observe(d); });
  } else {
    window.adaptsimDrawAll();
  }
  document.querySelectorAll('#policy-toggle input').forEach(function (box) {
    box.addEventListener('change', function () {
      var policy = box.dataset.policy;
      document.querySelectorAll('figure[data-policy-toggle] .plotly-graph-div')
        .forEach(function (div) {
          if (!div.data) return;  // not drawn yet: drawn with the boxes as they are then
          var idx = [];
          div.data.forEach(function (t, i) { if (t.legendgroup === policy) idx.push(i); });
          if (idx.length) Plotly.restyle(div, {visible: box.checked ? true : 'legendonly'}, idx);
        });
    });
  });
})();
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


@dataclass
class Page:
    """A report page: title, lead, optional policy colours, sections.

    Args:
        title: the page's ``<h1>`` and ``<title>``.
        lead: one line under the title (what was run).
        policy_colours: policy -> colour; when given, a row of checkboxes (with the
            colour swatches) toggles each policy on every figure marked ``toggle``.
        plotly_js: embed Plotly's JavaScript (done only when a block draws a figure).
    """

    title: str
    lead: str = ""
    policy_colours: dict[str, str] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    plotly_js: bool = True

    def section(self, title: str, anchor: str = "") -> Section:
        """Append and return a new section (its anchor derived from the title if not given)."""
        s = Section(anchor or _slug(title), title)
        self.sections.append(s)
        return s

    def _toggle(self) -> str:
        if not self.policy_colours:
            return ""
        boxes = "".join(
            f'<label><input type="checkbox" checked data-policy="{html.escape(p)}">'
            f'<span class="swatch" style="background:{c}"></span>{html.escape(p)}</label>'
            for p, c in self.policy_colours.items()
        )
        return (
            '<fieldset class="toggle" id="policy-toggle"><legend>Policies shown on the charts'
            f"</legend>{boxes}</fieldset>"
        )

    def html(self) -> str:
        """The whole page as one self-contained HTML document (no external resources)."""
        js = ""
        types = frozenset().union(*(b.traces for s in self.sections for b in s.blocks))
        if self.plotly_js and types:
            text, _ = plotly_js(types)
            js = f'<script type="text/javascript">{text}</script>'
        toc = "".join(
            f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in self.sections
        )
        body = []
        for s in self.sections:
            body.append(f'<section id="{s.anchor}" aria-labelledby="{s.anchor}-h">')
            body.append(f'<h2 id="{s.anchor}-h">{html.escape(s.title)}</h2>')
            body.extend(b.html for b in s.blocks if b.html)
            body.append("</section>")
        lead = f'<p class="lead">{html.escape(self.lead)}</p>' if self.lead else ""
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>{js}</head><body>"
            f"<main><header><h1>{html.escape(self.title)}</h1>{lead}</header>"
            f'<nav class="toc" aria-label="contents"><strong>Contents</strong><ol>{toc}</ol></nav>'
            f"{self._toggle()}{''.join(body)}</main>"
            + (f"<script>{_PAGE_JS}</script>" if js else "")
            + "</body></html>"
        )

    def markdown(self) -> str:
        """The same page as markdown (for terminals and diffs); figures as their fallbacks."""
        out = [f"# {self.title}", ""]
        if self.lead:
            out += [self.lead, ""]
        out += [f"{i}. [{s.title}](#{s.anchor})" for i, s in enumerate(self.sections, 1)]
        for s in self.sections:
            out += ["", f"## {s.title}"]
            for b in s.blocks:
                if b.md:
                    out += ["", b.md]
        return "\n".join(out) + "\n"

    def writers(self, folder: str | Path, stem: str = "report") -> dict[Path, Callable]:
        """What :meth:`write` writes, for :func:`~adaptsim.atomic.write_together` with
        files of the caller's (the images the markdown links to)."""
        d = Path(folder)
        return {
            d / f"{stem}.html": lambda p: p.write_text(self.html(), "utf-8"),
            d / f"{stem}.md": lambda p: p.write_text(self.markdown(), "utf-8"),
        }

    def write(self, folder: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``stem.html`` and ``stem.md`` into ``folder``, together and atomically."""
        h, m = write_together(self.writers(folder, stem))
        return h, m
