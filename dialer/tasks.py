"""Owned background tasks: every task a component starts is kept, its failure logged, and the
component can cancel and await them all when it stops (no fire-and-forget)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class OwnedTasks:
    def __init__(self, logger: logging.Logger, what: str = "task") -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = logger
        self._what = what

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s %s failed", self._what, task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Any:
        return iter(list(self._tasks))

    async def wait(self) -> None:
        """Await every task still running (they may spawn more: loop until none is left)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.wait()
