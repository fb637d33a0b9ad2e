"""Split policies: who decides the partition point, when, and from what.

A policy is an object with a ``decide(view) -> ordinal`` method and a
``period_s`` attribute (``None``: it decides at every request; a number: every
that many seconds). ``view`` (a :class:`View`) is all it may see: the time, the
current point, the latest condition reading of the monitor (delayed and noisy as
the scenario says), the requests that finished since its last decision, and the
calibration's predictions. Only policies marked ``clairvoyant`` (the oracle and
static-best, which by definition use the truth) may ask the view for the truth.

Built-ins, by registry name: ``static`` (``point``), ``all-edge``, ``all-cloud``,
``static-best`` (best for the true conditions at t = 0: the paper's baseline),
``oracle`` (best for the true conditions of each request, looking ahead through
the real link and queues, paying the switch pause: the upper bound),
``oracle-free`` (the same, switching free: a looser bound), and, each in its own
module, ``reactive`` (EWMA of the monitor's readings, a switching threshold and
hysteresis), ``neurosurgeon``, ``mpc`` and ``changepoint`` (docs/policies.md).
Every policy declares the flags of :class:`Policy` (defaults in
:class:`BasePolicy`); :func:`resolve_policy` makes each conform once. A user policy is
``module:callable`` or ``path/to/file.py:callable``: a class (instantiated with
``params``) or a plain function ``decide(view) -> ordinal``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import numbers
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from adaptsim.calibration import ModelCalibration, Prediction
from adaptsim.errors import UserError
from adaptsim.simulator.params import name_problem, shown, whole
from adaptsim.units import seconds_per_byte

__all__ = [
    "FLAGS",
    "REGISTRY",
    "BasePolicy",
    "Conditions",
    "Estimate",
    "Observation",
    "Policy",
    "View",
    "conform",
    "default_name",
    "resolve_policy",
]


@dataclass(frozen=True)
class Conditions:
    """Operating conditions at the edge."""

    bandwidth_mbps: float
    edge_cpu_pct: float = 0.0
    edge_mem_pct: float = 0.0


class Observation(NamedTuple):
    """One finished request as the edge sees it once its result is back.

    A NamedTuple (immutable, like the frozen dataclass it was): the engine builds
    one per finished frame for every policy that reads them, several times cheaper.
    """

    time_s: float
    point: int
    latency_s: float
    edge_s: float
    uplink_s: float
    payload_bytes: float
    # The tail's compute seconds in the cloud (0: all-edge, or a cloud that does not
    # report it): what a server that times its own work sends back with the result.
    cloud_s: float = 0.0


Estimate = Prediction  # predicted edge, link and cloud seconds per point


@dataclass
class View:
    """What a policy may consult at a decision. The engine owns and updates it."""

    model: ModelCalibration
    tables: object  # adaptsim.simulator.engine.Tables: calibration lookups per stress level
    cloud_cpu_pct: float
    cloud_mem_pct: float
    arrival_rate_hz: float = 0.0
    cloud_servers: int = 1
    now_s: float = 0.0
    current_point: int = 0
    monitor: Conditions | None = None
    finished: list[Observation] = field(default_factory=list)
    # What the edge application knows of its own queues and deployment:
    edge_free_s: float = 0.0  # when the edge CPU finishes the frames queued on it
    # Payload bytes the edge has handed to the uplink (its frames done on the edge) and
    # not yet seen delivered: its own send backlog, which a real application knows.
    # (Not when they will be delivered: that depends on the future bandwidth.)
    uplink_unacked_bytes: float = 0.0
    # what the policy counts a switch to cost (the edge pauses this long; in a folded
    # twin the Belief's, while the engine charges the world's measured pause)
    pause_s: float = 0.0
    one_way_latency_s: float = 0.0
    last_arrival_s: float = 0.0  # when the latest frame reached the edge
    _truth: Callable[[float], Conditions] | None = None
    _lookahead: Callable[[], np.ndarray] | None = None

    @property
    def ordinals(self) -> np.ndarray:
        return self.model.ordinals

    def predict(self, cond: Conditions) -> Estimate:
        """Predicted edge, link and cloud seconds of every point under ``cond`` (no queueing).

        Uses the same calibration tables and link law the simulator serves with.
        Stress is clamped to the calibrated range and rounded to whole percent
        (the tables are cached per level).
        """
        e = self.model.edge_blocks
        cpu = round(min(max(cond.edge_cpu_pct, e.cpu_levels[0]), e.cpu_levels[-1]))
        mem = round(min(max(cond.edge_mem_pct, e.mem_levels[0]), e.mem_levels[-1]))
        edge, over, wire_bytes, host = self.tables.at(float(cpu), float(mem))
        s_per_byte = seconds_per_byte(max(cond.bandwidth_mbps, 1e-6))
        comm = np.maximum(over + wire_bytes * s_per_byte, host)
        return Estimate(edge_s=edge, comm_s=comm, cloud_s=self.tables.cloud_s)

    def predict_total(self, cond: Conditions) -> np.ndarray:
        """Predicted end-to-end seconds of every point under ``cond`` (no queueing)."""
        return self.predict(cond).total_s

    def stable(self, cond: Conditions, predicted: Estimate | None = None) -> np.ndarray:
        """Points whose every stage keeps up with the arrival rate under ``cond``.

        A point whose edge, link or cloud time exceeds the time between frames
        builds a queue without bound, whatever its single-frame latency. Pass
        ``predicted`` (``predict(cond)``) when already at hand.
        """
        if self.arrival_rate_hz <= 0:
            return np.ones(len(self.model.ordinals), dtype=bool)
        p = predicted if predicted is not None else self.predict(cond)
        gap = 1.0 / self.arrival_rate_hz
        return (p.edge_s < gap) & (p.comm_s < gap) & (p.cloud_s / self.cloud_servers < gap)

    def best_point(self, cond: Conditions) -> int:
        """The point with the lowest predicted latency under ``cond`` (lowest ordinal on ties)."""
        return int(self.model.ordinals[int(np.argmin(self.predict_total(cond)))])

    def truth(self, t: float | None = None) -> Conditions:
        """The true conditions at ``t`` (default now). Clairvoyant policies only."""
        if self._truth is None:
            raise PermissionError("only clairvoyant policies may see the true conditions")
        return self._truth(self.now_s if t is None else t)

    def lookahead(self) -> np.ndarray:
        """Exact completion time of this request at every point. Clairvoyant policies only."""
        if self._lookahead is None:
            raise PermissionError("only clairvoyant policies may look ahead")
        return self._lookahead()


class Policy(Protocol):
    """What the engines (and the testbed) read of a policy: these attributes and ``decide``.

    :func:`resolve_policy` makes every policy conform once (see :data:`FLAGS`), so
    the engines read plain attributes and never guess.
    """

    name: str
    period_s: float | None  # None: decide at every request; else every that many seconds
    clairvoyant: bool  # may see the truth and look ahead (the oracle, static-best)
    free_switching: bool  # a re-partition costs it no pause (oracle-free only)
    uses_finished: bool  # wants View.finished (the engine may skip building it)
    races: bool  # a clairvoyant policy hedged too, its look-ahead the race's (oracle-race)

    def decide(self, view: View) -> int: ...


class BasePolicy:
    """The declared defaults of every flag of :class:`Policy`; the built-ins inherit them.

    Plain class attributes (not dataclass fields), so a built-in's own fields stay
    its own and a user class need not inherit anything: :func:`resolve_policy`
    gives a user object that lacks a flag the default declared here.
    """

    name: str = "policy"
    period_s: float | None = None
    clairvoyant: bool = False
    free_switching: bool = False
    uses_finished: bool = True
    races: bool = False

    def decide(self, view: View) -> int:
        raise NotImplementedError


# The flags a policy declares, with the default a user object lacking one gets.
FLAGS: dict[str, object] = {
    "period_s": BasePolicy.period_s,
    "clairvoyant": BasePolicy.clairvoyant,
    "free_switching": BasePolicy.free_switching,
    "uses_finished": BasePolicy.uses_finished,
    "races": BasePolicy.races,
}


@dataclass
class Static(BasePolicy):
    point: int
    name: str = "static"
    period_s: float | None = None
    uses_finished: bool = False  # the engine may skip building Observation objects

    def decide(self, view: View) -> int:
        return self.point


@dataclass
class StaticBest(BasePolicy):
    """Best for the true conditions at t = 0, then never changes (the paper's baseline)."""

    name: str = "static-best"
    period_s: float | None = None
    clairvoyant: bool = True
    uses_finished: bool = False
    _point: int | None = None

    def decide(self, view: View) -> int:
        if self._point is None:
            self._point = view.best_point(view.truth(0.0))
        return self._point


@dataclass
class Oracle(BasePolicy):
    """Per request, the point that finishes first given the true future: the upper bound.

    It pays the switch pause like every other policy, and its look-ahead knows it:
    a point other than the current one starts on the edge after the pause. With
    ``free_switching`` (registry name ``oracle-free``) switching costs it nothing: a
    looser bound, which shows how much of the gap is the pause's. With ``races``
    (registry name ``oracle-race``), in a scenario that hedges, it races like the
    practical policies: its point per frame is the one whose race (with the same
    second path and gate) is back first, pause paid; without a hedge it is the oracle.
    """

    name: str = "oracle"
    period_s: float | None = None
    clairvoyant: bool = True
    uses_finished: bool = False
    free_switching: bool = False
    races: bool = False

    def decide(self, view: View) -> int:
        return int(view.ordinals[int(np.argmin(view.lookahead()))])


@dataclass
class FunctionPolicy(BasePolicy):
    """A user's plain function ``decide(view) -> ordinal`` as a policy."""

    fn: Callable[[View], int]
    name: str
    period_s: float | None = None

    def decide(self, view: View) -> int:
        return self.fn(view)  # checked by the engine: int() would turn 4.7 into 4 silently


def default_name(policy: str) -> str:
    """The name of a policy its spec does not label: the registry name, ``module:callable``,
    or for ``path/to/file.py:callable`` the file's own name and the callable (a path
    separator has no place in a name: see :func:`~adaptsim.simulator.params.name_problem`)."""
    module, sep, attr = policy.rpartition(":")
    if sep and module.endswith(".py"):
        return f"{module.replace(chr(92), '/').rpartition('/')[2]}:{attr}"
    return policy


def _ends(model: ModelCalibration) -> tuple[int, int]:
    return int(model.ordinals[0]), int(model.ordinals[-1])


def _builtin(module: str, cls: str) -> Callable[..., object]:
    """A factory importing its policy class on first use (those modules import this one)."""

    def factory(model, **kw):
        return getattr(importlib.import_module(f"adaptsim.simulator.{module}"), cls)(**kw)

    return factory


REGISTRY: dict[str, Callable[..., object]] = {
    "static": lambda model, point=None: Static(whole(point, "point")),
    "all-edge": lambda model: Static(_ends(model)[1], name="all-edge"),
    "all-cloud": lambda model: Static(_ends(model)[0], name="all-cloud"),
    "static-best": lambda model: StaticBest(),
    "oracle": lambda model: Oracle(),
    "oracle-free": lambda model: Oracle(name="oracle-free", free_switching=True),
    "oracle-race": lambda model: Oracle(name="oracle-race", races=True),
    "reactive": _builtin("reactive", "Reactive"),
    "neurosurgeon": _builtin("neurosurgeon", "Neurosurgeon"),
    "mpc": _builtin("mpc", "MPC"),
    "changepoint": _builtin("changepoint", "ChangePoint"),
}


def _load_user(target: str, base_dir: Path | None, where: str):
    mod_name, _, attr = target.rpartition(":")
    if not mod_name or not attr:
        raise UserError(
            f"{where}: policy {target!r} is neither a built-in "
            f"({', '.join(REGISTRY)}) nor module:callable / file.py:callable"
        )
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        path = path if path.is_absolute() or base_dir is None else base_dir / path
        if not path.is_file():
            raise UserError(f"{where}: policy file {path} does not exist")
        name = f"adaptsim_user_policy_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # the user's code: report, don't crash
                raise UserError(
                    f"{where}: importing {path} failed: {type(exc).__name__}: {exc}"
                ) from None
            sys.modules[name] = module
    else:
        try:
            module = importlib.import_module(mod_name)
        except ImportError as exc:
            raise UserError(f"{where}: cannot import module {mod_name!r} ({exc})") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise UserError(f"{where}: {mod_name} has no callable {attr!r}")
    return fn


def resolve_policy(
    spec, model: ModelCalibration, *, where: str = "policy", base_dir: Path | None = None
):
    """Build a fresh policy object from a scenario's policy spec (raises UserError)."""
    params = dict(spec.params)
    label = spec.label
    if spec.policy in REGISTRY:
        if "name" in params:  # one way to name a policy, the same in run, sweep and validate
            raise UserError(
                f"{where}: {spec.policy!r} takes no parameter 'name'; name it with "
                f"label: {shown(params['name'])} beside params"
            )
        factory = REGISTRY[spec.policy]
        try:
            policy = factory(model, **params)
        except (TypeError, ValueError, OverflowError) as exc:
            raise UserError(f"{where}: bad params for {spec.policy!r}: {exc}") from None
    else:
        target = _load_user(spec.policy, base_dir, where)
        if inspect.isclass(target):
            try:
                policy = target(**params)
            except Exception as exc:
                raise UserError(f"{where}: {spec.policy}({params}) failed: {exc}") from None
        else:
            period = params.pop("period_s", None)
            if params:
                raise UserError(
                    f"{where}: a function policy takes only period_s, not {sorted(params)}"
                )
            policy = FunctionPolicy(target, name=default_name(spec.policy), period_s=period or None)
        if not callable(getattr(policy, "decide", None)):
            raise UserError(f"{where}: {spec.policy} does not build an object with decide(view)")
    if isinstance(policy, Static) and policy.point not in set(model.ordinals.tolist()):
        raise UserError(
            f"{where}: point {policy.point} is not a point of {model.model} "
            f"({model.ordinals[0]}..{model.ordinals[-1]})"
        )
    if label is None:
        label = getattr(policy, "name", None) or default_name(spec.policy)
    return conform(policy, label, where)


def conform(policy, name: str, where: str = "policy"):
    """Give ``policy`` every flag of :class:`Policy`, checked, so the engines read plain
    attributes: a flag the object lacks gets its default (:data:`FLAGS`); one of the
    wrong type is a one-line :class:`UserError`. ``period_s`` 0 means every request
    (``None``). Returns the same object, named ``name``, which must be a fit name
    (:func:`~adaptsim.simulator.params.name_problem`): every command that builds
    policies (run, sweep, validate, the testbed's edge) comes through here."""
    problem = name_problem(name)
    if problem is not None:
        raise UserError(
            f"{where}: policy name {shown(name, 60)} {problem}: give the policy a label of "
            "plain text, e.g. label: my-policy (it names the policy's rows in every table "
            "and report)"
        )
    values = {"name": name}
    for flag, default in FLAGS.items():
        value = getattr(policy, flag, default)
        if flag == "period_s":
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value < 0
            ):
                raise UserError(
                    f"{where}: period_s {value!r} must be a number of seconds >= 0 "
                    "(0 or none: decide at every request)"
                )
            value = float(value) if value else None
        elif not isinstance(value, (bool, np.bool_)):
            raise UserError(f"{where}: policy flag {flag} must be true or false, not {value!r}")
        else:
            value = bool(value)
        values[flag] = value
    for attr, value in values.items():
        try:
            setattr(policy, attr, value)
        except (AttributeError, TypeError) as exc:
            raise UserError(
                f"{where}: cannot set {attr} on the policy object ({exc}); "
                "let it take attributes (no __slots__ without them, not frozen)"
            ) from None
    return policy
