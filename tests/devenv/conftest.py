"""Fixtures shared by the tests of devenv's modules."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture
def sleeper():
    """A child `sleep` in its own session, killed at teardown."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()
