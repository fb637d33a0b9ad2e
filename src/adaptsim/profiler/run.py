"""``adaptsim profile``: measure this host as the edge, the cloud, or the link.

Compute (``--host edge`` or ``cloud``): for every model, and every combination
of the CPU and memory stress levels, stress-ng is started, each point's head
(edge) or tail (cloud) is timed ``repeats`` times, and the median plus every
sample are written to the store (schema: :mod:`adaptsim.store.schema`). With
``rounds`` > 1 the repeats are split over that many visits of every condition,
each with its own stress-ng run, the conditions in a new seeded order each round:
one run of a stress level settles into its own regime (measured here: four runs
of the same 50 % CPU stress gave AlexNet's longest head 56-61 ms and a head a
third of the way in 42-49 ms, medians of 30 each), and pooling visits averages
that regime out where more repeats of one visit cannot. Memory
stress is a percentage of ``mem_budget_bytes``. ``cpus`` pins the profile and its
stress to those cores (a small edge: one core shared by the model and the
stress, as on the study's single-core ARM edge); ``cpu_quota`` (edge only) runs
the whole profile under a cgroup CPU quota, to emulate a slower edge CPU.

Link (``--host link``): for every bandwidth level, a veth pair between two network
namespaces is shaped with tc and payloads from 1 kB up to ``max_transfer_s`` worth
of bytes are sent ``repeats`` times each.

Each finished (model, condition) is written at once, atomically, under the source
``profile:<role>:<host>:<model>`` (``profile:link:<host>``): a new profile of the
same model on the same host replaces the old one, and Ctrl-C keeps what finished.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.emulation.cpus import pin_cpus, usable_cores
from adaptsim.errors import UserError
from adaptsim.profiler.host import host_facts
from adaptsim.store import COLUMNS, write_store
from adaptsim.units import bytes_per_s

__all__ = ["ComputePlan", "LinkPlan", "profile_compute", "profile_link"]

# Bounds checked before any stress-ng, TensorFlow or namespace starts: beyond them a
# typo (an extra zero or three) runs for days, starts a billion threads or fills memory.
MAX_REPEATS = 10_000  # timings per point and condition (30 already gives a p95)
MAX_THREADS_PER_CORE = 4
MAX_TRANSFER_S = 60.0  # link: the largest payload takes about this long
MAX_PAYLOAD_BYTES = 1 << 30  # link: the probe holds its largest payload in memory


def check_repeats(repeats: int) -> None:
    if not 1 <= repeats <= MAX_REPEATS:
        raise UserError(f"--repeats {repeats}: give at least 1 and at most {MAX_REPEATS}")


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2**63:  # as every seed of adaptsim: a store's int64
        raise UserError(f"--seed {seed}: give a seed >= 0 and below 2**63")


def _ram_bytes() -> int:
    """This host's physical memory (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


@dataclass
class ComputePlan:
    """What a compute profile measures; see the module docstring."""

    role: str
    models: list[str]
    cpu_levels_pct: list[float] = field(default_factory=lambda: [0.0, 50.0, 100.0])
    mem_levels_pct: list[float] = field(default_factory=lambda: [0.0, 50.0, 100.0])
    repeats: int = 10
    mem_budget_bytes: int = 1 << 30
    cpu_quota: float | None = None
    threads: int | None = None
    host: str | None = None
    seed: int = 0
    cpus: list[int] | None = None
    rounds: int = 1

    def conditions(self) -> list[tuple[float, float]]:
        return list(itertools.product(self.cpu_levels_pct, self.mem_levels_pct))

    def validate(self) -> None:
        """Every option checked before TensorFlow starts (one line, exit 2, at once)."""
        if self.role not in ("edge", "cloud"):
            raise UserError(f"--host {self.role}: a compute profile is edge or cloud")
        most_threads = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
        if self.threads is not None and not 1 <= self.threads <= most_threads:
            raise UserError(
                f"--threads {self.threads}: give 1 to {most_threads} TensorFlow threads "
                f"({MAX_THREADS_PER_CORE} per core of this machine)"
            )
        check_seed(self.seed)
        if self.cpu_quota is not None and not (
            math.isfinite(self.cpu_quota) and 0 < self.cpu_quota <= usable_cores()
        ):
            raise UserError(
                f"--cpu-quota {self.cpu_quota:g}: give a number of cores in (0, {usable_cores()}]"
            )
        check_repeats(self.repeats)
        if not 1 <= self.rounds <= self.repeats:
            raise UserError(
                f"--rounds {self.rounds}: give 1 to --repeats ({self.repeats}); "
                "each round times every condition at least once"
            )
        for name, levels in (
            ("--cpu-stress", self.cpu_levels_pct),
            ("--mem-stress", self.mem_levels_pct),
        ):
            if not levels or any(not 0 <= v <= 100 for v in levels):
                raise UserError(f"{name} {levels}: give levels in 0-100, e.g. 0,50,100")
            if len(set(levels)) != len(levels):
                raise UserError(f"{name} {levels}: a level is repeated")
        if self.cpu_quota is not None and self.role != "edge":
            raise UserError("--cpu-quota emulates a slower edge CPU: use it with --host edge")
        if any(v > 0 for v in self.mem_levels_pct) and self.mem_budget_bytes <= 0:
            raise UserError("--mem-budget-bytes must be positive when memory stress is asked")
        ram = _ram_bytes()
        if ram and self.mem_budget_bytes > ram // 2:
            raise UserError(
                f"--mem-budget-bytes {self.mem_budget_bytes}: give at most half this host's "
                f"memory, {ram // 2} bytes (stress-ng holds it all at 100 %; TensorFlow and "
                "the system need the rest: more gets the profile killed)"
            )

    def repeats_in_round(self, k: int) -> int:
        """How many of the repeats round ``k`` (0-based) takes."""
        return self.repeats // self.rounds + (k < self.repeats % self.rounds)


@dataclass
class LinkPlan:
    """What a link profile measures."""

    bandwidths_mbps: list[float] = field(default_factory=lambda: [5.0, 10.0, 25.0, 50.0])
    repeats: int = 10
    max_transfer_s: float = 0.5
    sizes: int = 6
    host: str | None = None
    seed: int = 0

    def validate(self) -> None:
        """Every option checked before the namespaces are made (one line, exit 2): rates
        tc tbf shapes (:func:`adaptsim.emulation.check_rate`), a largest payload the probe
        can hold in memory, a bounded number of transfers."""
        from adaptsim.emulation import check_rate

        check_repeats(self.repeats)
        if not self.bandwidths_mbps:
            raise UserError("--bandwidth: give positive rates in Mbit/s, e.g. 5,10,25")
        for b in self.bandwidths_mbps:
            check_rate(b, "--bandwidth")
        if len(set(self.bandwidths_mbps)) != len(self.bandwidths_mbps):
            raise UserError(f"--bandwidth {self.bandwidths_mbps}: a rate is repeated")
        if not (math.isfinite(self.max_transfer_s) and 0 < self.max_transfer_s <= MAX_TRANSFER_S):
            raise UserError(
                f"--max-transfer-s {self.max_transfer_s:g}: give seconds above 0, at most "
                f"{MAX_TRANSFER_S:g}"
            )
        top_mbps = max(self.bandwidths_mbps)
        top_bytes = bytes_per_s(top_mbps) * self.max_transfer_s
        if top_bytes > MAX_PAYLOAD_BYTES:
            raise UserError(
                f"--bandwidth {top_mbps:g} with --max-transfer-s {self.max_transfer_s:g}: the "
                f"largest payload would be {top_bytes:.3g} bytes (at most {MAX_PAYLOAD_BYTES}, "
                "held in memory): lower --max-transfer-s"
            )
        check_seed(self.seed)


def _base(facts: dict, role: str) -> dict:
    row = dict.fromkeys(COLUMNS, np.nan)
    for side in ("edge", "cloud"):
        mine = role in (side, "link")
        row[f"{side}_host"] = facts["host"] if mine else ""
        row[f"{side}_arch"] = facts["arch"] if mine else ""
        row[f"{side}_cpu"] = facts["cpu"] if mine else ""
        row[f"{side}_cores"] = facts["cores"] if mine else np.nan
        row[f"{side}_memory_bytes"] = facts["memory_bytes"] if mine else np.nan
    row["flags"] = ""
    return row


def _rows(base: dict, values: np.ndarray, column: str, points: list[dict]) -> list[dict]:
    """A median row and one row per repeat for each point: values is (repeats, points)."""
    out = []
    med = np.median(values, axis=0)
    for j, p in enumerate(points):
        out.append({**base, **p, "repeats": len(values), "stat": "median", column: med[j]})
        for v in values[:, j]:
            out.append({**base, **p, "repeats": 1, "stat": "sample", column: v})
    return out


def _tf_threads(threads: int | None) -> int:
    import tensorflow as tf

    n = threads or usable_cores()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process: keep what it has
        n = tf.config.threading.get_intra_op_parallelism_threads() or n
    return n


def profile_compute(
    plan: ComputePlan, out: Path, progress: Callable[[str], None] = print
) -> pd.DataFrame:
    """Run a compute profile; returns the rows written (see the module docstring)."""
    plan.validate()
    from contextlib import nullcontext

    from adaptsim.emulation import CpuQuota, Stress, require_stress_ng
    from adaptsim.models import ZOO_NAMES, analyse, build_model, canonical_name
    from adaptsim.profiler.timing import SplitTimer

    names = [canonical_name(m) for m in (plan.models or ZOO_NAMES)]
    if any(v > 0 for v in (*plan.cpu_levels_pct, *plan.mem_levels_pct)):
        require_stress_ng()
    mem_cpus = None
    if plan.cpus:
        mem_cpus = sorted(os.sched_getaffinity(0) - set(plan.cpus)) or None
        pin_cpus(plan.cpus)  # before TensorFlow starts its thread pools
    facts = host_facts(plan.host)
    threads = _tf_threads(plan.threads)
    rng = np.random.default_rng(plan.seed)
    conditions = plan.conditions()
    total_c = len(conditions)
    total, done = len(names) * total_c * plan.rounds, 0
    written = []
    quota = CpuQuota(plan.cpu_quota) if plan.cpu_quota else nullcontext()
    with quota:
        for name in names:
            t0 = time.perf_counter()
            model = build_model(name)
            graph = analyse(model)
            timer = SplitTimer(model, graph, plan.role, rng)
            progress(
                f"{name}: {len(graph.points)} points compiled in {time.perf_counter() - t0:.1f} s"
            )
            points = [
                {"model": name, "point": p.ordinal, "layer_index": float(p.layer_index),
                 "layer_name": p.layer_name, "output_bytes": float(p.output_bytes)}
                for p in graph.points
            ]  # fmt: skip
            source = f"profile:{plan.role}:{facts['host']}:{name}"
            prov = _compute_provenance(plan, facts, threads, mem_cpus)
            samples: dict[tuple[float, float], list[np.ndarray]] = {}
            rows: dict[tuple[float, float], list[dict]] = {}  # per condition
            for k in range(plan.rounds):
                order = conditions if k == 0 else [conditions[i] for i in rng.permutation(total_c)]
                for cpu, mem in order:
                    t1 = time.perf_counter()
                    n = plan.repeats_in_round(k)
                    with Stress(cpu, int(mem / 100.0 * plan.mem_budget_bytes), mem_cpus):
                        samples.setdefault((cpu, mem), []).append(
                            np.array([timer.once(rng) for _ in range(n)])
                        )
                    if k == plan.rounds - 1:
                        prov["conditions_done"].append([cpu, mem])
                    values = np.concatenate(samples[(cpu, mem)])
                    rows[(cpu, mem)] = _condition_rows(
                        plan, facts, source, points, cpu, mem, values
                    )
                    frame = pd.DataFrame([r for cond in rows.values() for r in cond])
                    write_store(out, frame, {source: prov})
                    done += 1
                    med = np.median(values, axis=0)
                    progress(
                        f"[{done}/{total}] {name} {plan.role} CPU {cpu:g}% memory {mem:g}%"
                        + (f" (round {k + 1}/{plan.rounds})" if plan.rounds > 1 else "")
                        + f": {n} repeat{'s' * (n != 1)} in {time.perf_counter() - t1:.1f} s, "
                        f"whole model {med.max():.4f} s"
                    )
            written.append(frame)
    return pd.concat(written, ignore_index=True)


def _condition_rows(plan: ComputePlan, facts: dict, source: str, points, cpu, mem, values):
    """Median and sample rows of one condition: values is (repeats, points)."""
    base = _base(facts, plan.role)
    base.update(
        source=source,
        provenance=f"adaptsim profile --host {plan.role}",
        record="partition",
        host_role=plan.role,
    )
    base[f"{plan.role}_cpu_pct"] = cpu
    base[f"{plan.role}_mem_pct"] = mem
    if plan.role == "edge":
        base["edge_cpu_quota"] = plan.cpu_quota or 1.0
    return _rows(base, values, f"{plan.role}_s", points)


def _compute_provenance(plan: ComputePlan, facts: dict, threads: int, mem_cpus) -> dict:
    import tensorflow as tf

    return {
        "kind": "adaptsim profile",
        "role": plan.role,
        "host": facts,
        "tensorflow": tf.__version__,
        "threads": threads,
        "cpu_quota": plan.cpu_quota,
        "cpus": plan.cpus,
        "memory_stress_cpus": mem_cpus,
        "mem_budget_bytes": plan.mem_budget_bytes,
        "repeats": plan.repeats,
        "rounds": plan.rounds,
        "seed": plan.seed,
        "method": "heads and tails timed directly as tf.function calls (profiler.timing)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions_done": [],
        "conditions_planned": [list(c) for c in plan.conditions()],
    }


def profile_link(
    plan: LinkPlan, out: Path, progress: Callable[[str], None] = print
) -> pd.DataFrame:
    """Run a link profile; returns the rows written."""
    from adaptsim.emulation import link_available
    from adaptsim.profiler.link import probe_sizes, transfer_times

    plan.validate()
    why = link_available()
    if why:
        raise UserError(f"--host link {why}")
    facts = host_facts(plan.host)
    source = f"profile:link:{facts['host']}"
    prov = {
        "kind": "adaptsim profile",
        "role": "link",
        "host": facts,
        "method": "veth pair between two network namespaces, tc tbf on the edge side; "
        "time from first byte sent to a 1-byte reply; no netem (no added delay)",
        "repeats": plan.repeats,
        "seed": plan.seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bandwidths_done": [],
    }
    rows: list[dict] = []
    for k, bw in enumerate(plan.bandwidths_mbps):
        t0 = time.perf_counter()
        sizes = probe_sizes(bw, plan.max_transfer_s, plan.sizes)
        pairs = np.array(transfer_times(bw, sizes, plan.repeats, plan.seed + k))
        base = _base(facts, "link")
        base.update(
            source=source,
            provenance="adaptsim profile --host link",
            record="link",
            host_role="link",
            model="",
            point=0,
            layer_index=np.nan,
            layer_name="",
            bandwidth_mbps=bw,
        )
        for size in sizes:
            v = pairs[pairs[:, 0] == size, 1]
            rows += _rows({**base, "output_bytes": float(size)}, v[:, None], "comm_s", [{}])
        prov["bandwidths_done"].append(bw)
        write_store(out, pd.DataFrame(rows), {source: prov})
        top = pairs[pairs[:, 0] == max(sizes), 1]
        progress(
            f"[{k + 1}/{len(plan.bandwidths_mbps)}] link {bw:g} Mbit/s: {len(sizes)} sizes x "
            f"{plan.repeats} in {time.perf_counter() - t0:.1f} s, "
            f"{max(sizes) * 8 / np.median(top) / 1e6:.2f} Mbit/s achieved"
        )
    return pd.DataFrame(rows)
