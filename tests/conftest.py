"""Shared test set-up: ``async def`` tests run in a fresh event loop each.

A small hook instead of a plugin: each coroutine test gets its own loop and a
generous overall limit, so a hung test fails instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

ASYNC_TEST_LIMIT_SECONDS = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}

    async def run() -> None:
        async with asyncio.timeout(ASYNC_TEST_LIMIT_SECONDS):
            await pyfuncitem.obj(**kwargs)

    asyncio.run(run())
    return True
