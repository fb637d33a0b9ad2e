"""A --secret-file other users of the host can read: said once, not refused.

Anyone who reads the shared secret can forge frames the server accepts. ssh refuses a
private key other users can read; adaptsim warns instead (a file written with the
default umask is 644, and the docs' `openssl rand -hex 32 > FILE` makes one), so a
documented set-up still runs. No server needed: nothing listens at the address.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptsim.cli import app

SCENARIO = Path(__file__).parent / "data" / "testbed_lenet.yaml"


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_secret_file_others_can_read_is_warned_about(tmp_path, mode, warned):
    secret = tmp_path / "secret"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    secret.chmod(mode)
    r = CliRunner().invoke(app, ["validate", str(SCENARIO), "--cloud", "127.0.0.1:1",
                                 "--cloud-wait-s", "0", "--secret-file", str(secret),
                                 "--out", str(tmp_path / "v")])  # fmt: skip
    assert r.exit_code == 2  # nothing listens there: one line, as before
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("adaptsim: error: --cloud 127.0.0.1:1: cannot connect")
    warning = [x for x in lines if "readable by other users" in x]
    assert bool(warning) == warned, lines
    if warned:
        assert f"mode {mode:o}" in warning[0] and f"chmod 600 {secret}" in warning[0]
