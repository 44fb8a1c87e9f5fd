"""Shared test set-up: which build is under test, ``async def`` tests in a fresh loop each,
and one throwaway PKI for every TLS test.

A small hook instead of a plugin: each coroutine test gets its own loop and a
generous overall limit, so a hung test fails instead of stalling the suite.
The loop is the one ``relay_core.run`` chooses, as for users: ``NET_RELAY_LOOP``
(``.ci/run`` runs the suite once on each loop), else uvloop where it is installed.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from certs import Pki, make_pki
from relay_core import run as run_on_chosen_loop
from relay_core._compiled import (
    PURE_PYTHON_ENV,
    build_description,
    build_is_stale,
    compiled_modules,
)

ASYNC_TEST_LIMIT_SECONDS = 60.0

# A busy 2-core machine draws examples slowly: that is no failure of the code under test.
settings.register_profile("busy-machine", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("busy-machine")


def pytest_report_header() -> str:
    return f"net-relay build under test: {build_description()}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules built from older sources: the edits would go untested."""
    if compiled_modules() and build_is_stale():
        pytest.exit(
            "the compiled modules were built from older sources, so the tests would run the old "
            "code. Rebuild with `python3 dev.py test` (it recompiles what changed), or test the "
            f"sources with {PURE_PYTHON_ENV}=1.", returncode=4)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}

    async def run() -> None:
        async with asyncio.timeout(ASYNC_TEST_LIMIT_SECONDS):
            await pyfuncitem.obj(**kwargs)

    run_on_chosen_loop(run())
    return True


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, servers and a client with certificates (see certs.py), made once: tests only
    read its files."""
    return make_pki(tmp_path_factory.mktemp("pki"))
