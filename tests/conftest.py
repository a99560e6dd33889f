"""Session-wide setup: one temp folder that every pytest-xdist worker of this run shares."""

from __future__ import annotations

import os

import pytest

import helpers


@pytest.fixture(scope="session", autouse=True)
def _shared_tmp(tmp_path_factory):
    # under xdist each worker's basetemp is a child of the run's own folder; alone, it is that
    base = tmp_path_factory.getbasetemp()
    helpers.SHARED_TMP = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    yield
