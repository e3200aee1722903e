"""Shared fixtures of the Python package's tests: the CLI binary the results are compared with,
and a fresh folder per test.

The binary is ``$MSPINN_BIN`` (scripts/test-python.sh sets it to the one ``cargo test`` built);
without it, ``target/release/mspinn`` or ``target/debug/mspinn`` of this checkout. Tests that
compare with the CLI fail, not skip, when ``MSPINN_BIN`` names a missing file: in CI the
comparison must run."""

from __future__ import annotations

import os
import pathlib
import subprocess
from typing import List

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _find_cli() -> pathlib.Path | None:
    env = os.environ.get("MSPINN_BIN")
    if env:
        return pathlib.Path(env)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("release", "debug"):
        p = target / profile / "mspinn"
        if p.is_file():
            return p
    return None


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    path = _find_cli()
    if path is None:
        pytest.skip("no mspinn binary: build it (cargo build --release) or set MSPINN_BIN")
    assert path.is_file(), f"MSPINN_BIN={path} does not exist"
    return path


def run_cli(cli: pathlib.Path, *args: str) -> str:
    """Runs the CLI, failing the test with its stderr if it fails."""
    p = subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"mspinn {' '.join(args)} exited {p.returncode}:\n{p.stderr}"
    return p.stdout


@pytest.fixture
def run(cli):
    def go(*args: str) -> str:
        return run_cli(cli, *args)

    return go


def bits(a) -> List[int]:
    """The IEEE bit patterns of a float64 array, for equality to the last bit."""
    import numpy as np

    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)
