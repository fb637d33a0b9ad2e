"""Real CPU and memory stress with stress-ng, for as long as a ``with`` block runs.

CPU stress loads every usable core to the asked percentage (``--cpu N
--cpu-load P``). Memory stress holds a number of bytes with ``--vm 1 --vm-bytes B
--vm-keep`` (a large percentage fills slowly and overshoots its timeout, so
absolute bytes are given) and the block starts only once that memory is resident.
stress-ng runs in its own process group, dies with this process
(``PR_SET_PDEATHSIG``) and is stopped when the block ends, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from adaptsim.errors import UserError
from adaptsim.profiler.host import usable_cores

__all__ = ["Stress", "require_stress_ng"]

_PR_SET_PDEATHSIG = 1
_RESIDENT_SHARE = 0.9  # memory counts as in place once 90 % of it is resident


def require_stress_ng() -> str:
    path = shutil.which("stress-ng")
    if path is None:
        raise UserError(
            "stress-ng is not installed: install it (Debian: apt-get install stress-ng, "
            "or run ./scripts/setup.sh as root) or profile with --cpu-stress 0 --mem-stress 0"
        )
    return path


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setsid()


def _group_rss_bytes(pgid: int) -> int:
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:
                continue
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total


class Stress:
    """Context manager: stress-ng loading the CPU and/or holding memory.

    Args:
        cpu_pct: load per core, 0-100 (0: no CPU stressor).
        mem_bytes: bytes to hold resident (0: no memory stressor).
        ready_timeout_s: how long to wait for the memory to become resident.
        settle_s: pause after start so the load is in place before timing.
    """

    def __init__(
        self, cpu_pct: float, mem_bytes: int, ready_timeout_s: float = 120.0, settle_s: float = 1.0
    ):
        if not 0 <= cpu_pct <= 100:
            raise UserError(f"CPU stress {cpu_pct:g}% is outside 0-100")
        if mem_bytes < 0:
            raise UserError(f"memory stress of {mem_bytes} bytes is negative")
        self.cpu_pct, self.mem_bytes = cpu_pct, int(mem_bytes)
        self.ready_timeout_s, self.settle_s = ready_timeout_s, settle_s
        self._proc: subprocess.Popen | None = None

    @property
    def idle(self) -> bool:
        return self.cpu_pct == 0 and self.mem_bytes == 0

    def command(self) -> list[str]:
        cmd = [require_stress_ng(), "--timeout", "6h", "--quiet"]
        if self.cpu_pct > 0:
            cmd += ["--cpu", str(usable_cores()), "--cpu-load", f"{self.cpu_pct:g}"]
        if self.mem_bytes > 0:
            cmd += ["--vm", "1", "--vm-bytes", str(self.mem_bytes), "--vm-keep"]
        return cmd

    def __enter__(self) -> Stress:
        if self.idle:
            return self
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        want = self.mem_bytes * _RESIDENT_SHARE
        while True:
            if self._proc.poll() is not None:
                msg = (self._proc.stderr.read() or b"").decode(errors="replace").strip()
                raise UserError(
                    f"stress-ng exited at start (code {self._proc.returncode}): "
                    f"{msg.splitlines()[-1] if msg else 'no message'}; command: "
                    + " ".join(self.command())
                )
            if _group_rss_bytes(self._proc.pid) >= want:
                break
            if time.monotonic() > deadline:
                raise UserError(
                    f"stress-ng did not make {self.mem_bytes} bytes resident in "
                    f"{self.ready_timeout_s:g} s; lower --mem-budget-bytes"
                )
            time.sleep(0.1)
        time.sleep(self.settle_s)

    def stop(self) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGTERM)
            self._proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        finally:
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None

    def __exit__(self, *exc) -> None:
        self.stop()
