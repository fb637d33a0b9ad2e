"""Piecewise-linear interpolation over a (CPU stress, memory stress) grid.

Values are measured at a few stress levels per axis. Between levels they are
interpolated bilinearly in *speed* (1 / value), not in time: a process sharing one
core with a stress-ng hog that runs p % of the time runs at a speed of
``1 - p / 200`` of an idle core's, linear in p, so its time is not. In the
AdaptiveDNN data the edge is 1.34x slower at 50 % CPU stress and 2.0x at 100 %,
which speed interpolation reproduces (1/0.75 and 1/0.5) and time interpolation
does not (it gives 1.5x at 50 %). Where a value is (near) zero, time is
interpolated linearly instead. Outside the measured range
they are not silently extrapolated: :class:`ExtrapolationError` is raised unless
the caller asks for extrapolation, and then the result says which queries were
extrapolated. A grid of compute times (``time_sharing``) extrapolates CPU stress
with that law, ``time(p) = base / (1 - p / 200)``, its one parameter fitted to
every measured CPU level (a geometric mean of ``time * (1 - p / 200)``), and holds
memory stress at the nearest measured level: in the AdaptiveDNN data 100 % CPU
stress doubles every model's edge time (1.99-2.04x) while the 50 % level wanders
(1.02-1.74x), so a straight line through two levels can miss by 3x, and memory
stress alone changes edge times by under 1 %. A ``hold`` grid (the link, over
edge and cloud CPU stress) keeps the nearest level on both axes. Other grids
extrapolate linearly from the two nearest levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ExtrapolationError", "StressGrid"]


_TINY = 1e-6


class ExtrapolationError(ValueError):
    """A query outside the measured levels, without extrapolation allowed."""


def _axis(levels: np.ndarray, q: np.ndarray, name: str, extrapolate: bool):
    """Lower index and weight of the upper neighbour for each query."""
    if len(levels) == 1:
        off = ~np.isclose(q, levels[0])
        if off.any() and not extrapolate:
            raise ExtrapolationError(
                f"{name} {q[off][0]:g} was never measured (only {levels[0]:g}); cannot interpolate"
            )
        return np.zeros(len(q), dtype=np.int64), np.zeros(len(q)), off
    outside = (q < levels[0] - 1e-9) | (q > levels[-1] + 1e-9)
    if outside.any() and not extrapolate:
        raise ExtrapolationError(
            f"{name} {q[outside][0]:g} lies outside the measured levels "
            f"{levels[0]:g}..{levels[-1]:g}; adaptsim does not extrapolate silently"
        )
    lo = np.clip(np.searchsorted(levels, q, side="right") - 1, 0, len(levels) - 2)
    w = (q - levels[lo]) / (levels[lo + 1] - levels[lo])
    return lo, w, outside


@dataclass(frozen=True)
class StressGrid:
    """Values on a grid of CPU x memory stress levels.

    Attributes:
        cpu_levels: increasing CPU stress levels, percent.
        mem_levels: increasing memory stress levels, percent.
        values: array of shape (len(cpu_levels), len(mem_levels), ...).
        time_sharing: compute times: beyond the CPU levels the time-sharing law,
            beyond the memory levels the nearest one.
        hold: beyond the levels of either axis, the nearest one (the link).
        names: the two axes as error messages name them.
    """

    cpu_levels: np.ndarray
    mem_levels: np.ndarray
    values: np.ndarray
    time_sharing: bool = False
    hold: bool = False
    names: tuple[str, str] = ("CPU stress %", "memory stress %")

    def at(self, cpu_pct, mem_pct, *, extrapolate: bool = False):
        """Interpolated values for each (cpu, mem) query.

        Returns:
            (values of shape (n_queries, ...), bool array: query was extrapolated).
        """
        cpu = np.atleast_1d(np.asarray(cpu_pct, dtype=np.float64))
        mem = np.atleast_1d(np.asarray(mem_pct, dtype=np.float64))
        cpu, mem = np.broadcast_arrays(cpu, mem)
        i, wi, oi = _axis(self.cpu_levels, cpu, self.names[0], extrapolate)
        j, wj, oj = _axis(self.mem_levels, mem, self.names[1], extrapolate)
        if self.time_sharing or self.hold:
            wj = np.clip(wj, 0.0, 1.0)  # beyond the memory levels: the nearest one
        if self.hold:
            wi = np.clip(wi, 0.0, 1.0)
        i1 = np.minimum(i + 1, len(self.cpu_levels) - 1)
        j1 = np.minimum(j + 1, len(self.mem_levels) - 1)
        shape = (-1,) + (1,) * (self.values.ndim - 2)
        w_mem = wj
        wi, wj = wi.reshape(shape), wj.reshape(shape)

        def blend(v):
            return (
                v[i, j] * (1 - wi) * (1 - wj)
                + v[i1, j] * wi * (1 - wj)
                + v[i, j1] * (1 - wi) * wj
                + v[i1, j1] * wi * wj
            )

        linear = blend(self.values)
        with np.errstate(divide="ignore"):
            speed = blend(1.0 / np.maximum(self.values, _TINY))
        corners_ok = (
            np.minimum.reduce(
                [self.values[i, j], self.values[i1, j], self.values[i, j1], self.values[i1, j1]]
            )
            > _TINY
        )
        ok = corners_ok & (speed > 0)  # extrapolated speed can reach zero: keep time then
        out = np.where(ok, 1.0 / np.where(ok, speed, 1.0), linear)
        if self.time_sharing and oi.any():
            out[oi] = self._time_sharing(cpu[oi], j[oi], w_mem[oi])
        return out, oi | oj

    def _time_sharing(self, cpu: np.ndarray, j: np.ndarray, wj: np.ndarray) -> np.ndarray:
        """Values at CPU stress ``cpu`` by the time-sharing law fitted on every CPU level.

        ``j``, ``wj``: each query's memory interval and weight (interpolated in speed).
        """
        v = np.maximum(self.values, _TINY)
        j1 = np.minimum(j + 1, len(self.mem_levels) - 1)
        tail = (1,) * (v.ndim - 2)
        w = wj.reshape((-1, 1, *tail))
        speed = np.swapaxes(1.0 / v[:, j], 0, 1) * (1 - w) + np.swapaxes(1.0 / v[:, j1], 0, 1) * w
        share = (1.0 - self.cpu_levels / 200.0).reshape((1, -1, *tail))  # per CPU level
        base = np.exp(np.mean(np.log(share / speed), axis=1))
        return base / (1.0 - np.minimum(cpu, 199.0) / 200.0).reshape((-1, *tail))
