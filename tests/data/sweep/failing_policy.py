"""A user policy that raises mid-run when asked to: a sweep must record it and go on."""

from __future__ import annotations


class FailsAfter:
    """Keeps the current point; raises at the first decision after ``fail_at_s``
    (never, if ``fail_at_s`` is negative)."""

    def __init__(self, fail_at_s: float = -1.0, period_s: float = 1.0):
        self.fail_at_s = fail_at_s
        self.period_s = period_s
        self.name = "fails-after"

    def decide(self, view) -> int:
        if self.fail_at_s >= 0 and view.now_s >= self.fail_at_s:
            raise RuntimeError(f"planted failure at t={view.now_s:g} s")
        return view.current_point
