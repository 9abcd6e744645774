"""Where a command's time went: the time its outside calls took, summed per step.

A stall in which many commands wait together is a wait on something outside the process
(docs/benchmark.md, seventh wave); the command's own log line says which. The processor wraps
each adapter it wires (`timed(repository, "db")`, `timed(bank, "bank")`, ...), and the handler
opens `measuring()` around each command: every awaited method of a wrapped adapter then adds
its wall time to the command's step. Outside `measuring()` (the reconciler, the relay) the
wrappers only pass the call on.

What a step holds is its whole wait: a PostgreSQL step includes waiting for a pooled
connection, a Kafka step waiting for the broker's acknowledgement. The rest of a command's time
is its own CPU and its wait for the loop.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

T = TypeVar("T")

_steps: ContextVar[dict[str, float] | None] = ContextVar("command_steps", default=None)


@contextmanager
def measuring() -> Iterator[dict[str, float]]:
    """The steps of the code run inside, in ms by step name (tasks it starts share them)."""
    steps: dict[str, float] = {}
    token = _steps.set(steps)
    try:
        yield steps
    finally:
        _steps.reset(token)


def current() -> dict[str, float]:
    """The steps so far of the command being measured, rounded (empty outside `measuring()`)."""
    steps = _steps.get() or {}
    return {name: round(ms, 1) for name, ms in sorted(steps.items())}


class _Timed:
    """Passes everything on to its target; its coroutine methods are timed into `step`."""

    def __init__(self, target: object, step: str) -> None:
        self._target = target
        self._step = step
        self._wrapped: dict[str, Callable[..., Awaitable[Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = _timing(attribute, self._step)
        return wrapped


def _timing(call: Callable[..., Awaitable[Any]], step: str) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(call)
    async def timed_call(*args: Any, **kwargs: Any) -> Any:
        steps = _steps.get()
        if steps is None:
            return await call(*args, **kwargs)
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        finally:
            steps[step] = steps.get(step, 0.0) + (time.perf_counter() - started) * 1000

    return timed_call


def timed(target: T, step: str) -> T:
    """`target`, with the time of each of its awaited methods added to the command's `step`."""
    return cast(T, _Timed(target, step))
