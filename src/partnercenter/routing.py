"""The route class every router uses: one worker-thread hop per plain ``def`` endpoint.

FastAPI runs a plain ``def`` endpoint in a worker thread, and then, because the endpoint was
not a coroutine, validates its return value against the ``response_model`` in a second
worker-thread hop. Validating our own models is CPU work of microseconds; the hop costs
more (a thread handoff each way, measured with ``bench.request_overhead``). :class:`Route`
wraps such an endpoint in a coroutine that runs it in the worker thread, so FastAPI sees a
coroutine and validates on the event loop: the database work still runs off the loop, and
a read makes one hop fewer. Signatures, names and docstrings stay the endpoint's own
(``functools.wraps``), so dependencies, OpenAPI and the permission walk see no difference.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def on_worker_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` (a plain function) as a coroutine function that runs it in a worker thread.

    Keyword arguments only, as FastAPI calls endpoints; the context variables of the request
    (the correlation id of the log lines) go with it, as ``run_in_threadpool`` copies them.
    """

    @functools.wraps(endpoint)
    async def run(**values: Any) -> Any:
        return await run_in_threadpool(functools.partial(endpoint, **values))

    return run


class Route(APIRoute):
    """An :class:`APIRoute` whose plain ``def`` endpoint costs one thread hop (module doc)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.isfunction(endpoint) and not (
            inspect.iscoroutinefunction(endpoint)
            or inspect.isgeneratorfunction(endpoint)
            or inspect.isasyncgenfunction(endpoint)
        ):
            endpoint = on_worker_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)


def router(**kwargs: Any) -> APIRouter:
    """An :class:`APIRouter` (same arguments) whose routes are :class:`Route`."""
    return APIRouter(route_class=Route, **kwargs)
