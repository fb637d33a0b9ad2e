"""A policy's decision, checked: what a user's policy returns is not trusted.

A user policy may raise, or return ``None``, a string, ``4.7`` or a point the
model does not have. Any of these stops that run with a :class:`PolicyError`
naming the policy, the seed, the simulated time and the offending value; the
runs already finished are kept (see :func:`adaptsim.simulator.run_scenario`).
A whole number given as a float (``4.0``) or a numpy integer is accepted.
"""

from __future__ import annotations

import numbers

from adaptsim.errors import UserError

__all__ = ["PolicyError", "checked_decision"]


class PolicyError(UserError):
    """A policy failed or returned something that is not one of the model's points."""


def checked_decision(policy, view, points: dict[int, int], seed: int, model: str) -> int:
    """Call ``policy.decide(view)``; return the point, or raise :class:`PolicyError`."""
    try:
        raw = policy.decide(view)
    except Exception as exc:  # the user's code: report it as theirs, keep the other runs
        raise PolicyError(f"{_at(policy, view, seed)} raised {type(exc).__name__}: {exc}") from None
    if type(raw) is int and raw in points:  # the usual answer, checked at once (per frame)
        return raw
    at = _at(policy, view, seed)
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        raise PolicyError(f"{at} returned {raw!r}, not a partition point (an integer)")
    if not (isinstance(raw, numbers.Integral) or float(raw).is_integer()):
        raise PolicyError(f"{at} returned {raw!r}, not a whole partition point")
    point = int(raw)
    if point not in points:
        ordinals = sorted(points)
        raise PolicyError(
            f"{at} returned point {point}, which {model} does not have "
            f"(its points: {ordinals[0]}..{ordinals[-1]})"
        )
    return point


def _at(policy, view, seed: int) -> str:
    """Who failed where, for the error line (built only when there is an error)."""
    return f"policy {policy.name!r} (seed {seed}) at simulated time {view.now_s:.6g} s"
