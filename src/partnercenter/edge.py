"""Checks at the edge, before any route runs: hostile bytes, sizes, methods and media types.

:class:`EdgeGuard` is one ASGI middleware in front of every route (API, pages, static files).
For each request it checks, in this order, and answers with our error body on the first
failure, without calling the route:

- the address: longer than ``max_url_bytes`` → 414; a path or query string that is not UTF-8
  once percent-decoded, or holds a control character (NUL included) → 400;
- the headers: names and values together (each counted as ``name: value`` and a line end)
  longer than ``max_header_bytes`` → 431; a control character in a value → 400;
- the method: a path that exists for other methods → 405 with the right ``Allow``;
  ``OPTIONS`` → 204 with ``Allow``;
- the body size: ``Content-Length`` over the route's limit → 413 before a byte is read;
  a body that grows past it while streaming → 413. Routes that take files (and those marked
  with :func:`body_limit`) get ``max_upload_bytes`` and stream; every other route gets
  ``max_body_bytes`` and its body is buffered here, within that limit, so it can be checked;
- the media type: a JSON operation given a body that is not JSON (``text/plain`` included)
  → 415; a form operation given neither form encoding → 415;
- the content of buffered bodies: JSON that is not UTF-8, that nests too deep, that has
  ``NaN``/``Infinity`` or integers beyond 64 bits, or strings with control characters or lone
  surrogates → 400; form fields likewise.

It also adds the security headers (built with the ``secure`` library) to every response.
What gets past it (a multipart text field, say) is stopped by ``db.UnstorableText`` and the
error handlers in ``errors.py``. docs/dev/security.md describes the whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from partnercenter.config import Settings
from partnercenter.errors import (
    DomainError,
    HeaderFieldsTooLarge,
    InvalidInput,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    UriTooLong,
)
from partnercenter.i18n import N_

F = TypeVar("F", bound=Callable[..., Any])

# C0 controls and DEL; tab, line feed and carriage return are allowed in bodies (text areas).
_CONTROL_IN_ADDRESS = re.compile(rb"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_IN_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_INT64 = 2**63 - 1
_MAX_JSON_DEPTH = 64
_JSON_TYPES = ("application/json",)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def body_limit(nbytes: int) -> Callable[[F], F]:
    """Give a route that reads a raw body (a document, a CSV) its own body limit, in bytes.

    Put it under the route decorator. The body then streams to the route unbuffered; the
    route stays responsible for checking what it reads.
    """

    def mark(endpoint: F) -> F:
        endpoint.__body_limit__ = nbytes  # type: ignore[attr-defined]
        return endpoint

    return mark


class _BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes its limit (answered 413)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=PayloadTooLarge.default_description)


class _Refused(Exception):
    def __init__(self, error: DomainError) -> None:
        super().__init__(error.description)
        self.error = error


class _RouteRule:
    """What a matched route accepts: its body kind and limit, and whether it streams."""

    __slots__ = ("kind", "limit", "streams")

    def __init__(self, kind: str | None, limit: int, streams: bool) -> None:
        self.kind = kind
        self.limit = limit
        self.streams = streams


def _leaf_routes(routes: list[Any]) -> list[Any]:
    """The routes that answer requests, with included routers opened up (their order kept)."""
    leaves: list[Any] = []
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            leaves.extend(_leaf_routes(candidates()))
        else:
            leaves.append(route)
    return leaves


def _flat_body_params(route: APIRoute) -> list[Any]:
    found: list[Any] = []
    stack = [route.dependant]
    while stack:
        current = stack.pop()
        found.extend(current.body_params)
        stack.extend(current.dependencies)
    return found


def _rule_for(route: Any, settings: Settings) -> _RouteRule:
    route = getattr(route, "original_route", route)  # an included router's route context
    endpoint = getattr(route, "endpoint", None)
    own_limit = getattr(endpoint, "__body_limit__", None)
    if not isinstance(route, APIRoute):
        return _RouteRule(None, settings.max_body_bytes, streams=False)
    body = _flat_body_params(route)
    infos = [p.field_info for p in body]
    takes_files = any(isinstance(i, params.File) for i in infos)
    if any(isinstance(i, params.Form) for i in infos):
        kind: str | None = "form"
    elif body:
        kind = "json"
    else:
        kind = None
    if own_limit is not None:
        return _RouteRule(kind, int(own_limit), streams=True)
    if takes_files:
        return _RouteRule(kind, settings.max_upload_bytes, streams=True)
    return _RouteRule(kind, settings.max_body_bytes, streams=False)


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers every response carries, built with the ``secure`` library.

    HSTS only where the site is served over HTTPS (production, or an https base URL): sent
    over plain HTTP it would be ignored, and in development it would pin localhost to HTTPS.
    """
    import secure

    csp = secure.ContentSecurityPolicy().value(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    hsts = None
    if settings.secure_cookies:
        hsts = secure.StrictTransportSecurity().max_age(settings.hsts_seconds).include_subdomains()
    built = secure.Secure(
        csp=csp,
        hsts=hsts,
        xfo=secure.XFrameOptions().deny(),
        xcto=secure.XContentTypeOptions(),
        referrer=secure.ReferrerPolicy().same_origin(),
        corp=secure.CrossOriginResourcePolicy().same_origin(),
        coop=secure.CrossOriginOpenerPolicy().same_origin(),
    )
    return dict(built.headers)


class EdgeGuard:
    """The ASGI middleware described in this module's docstring."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._rules: dict[int, _RouteRule] = {}
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._table: list[tuple[Any, Any, Any]] | None = None

    @property
    def settings(self) -> Settings:
        settings: Settings = self.fastapi_app.state.settings
        return settings

    def _security_headers(self) -> list[tuple[bytes, bytes]]:
        if self._headers is None:
            self._headers = [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in security_headers(self.settings).items()
            ]
        return self._headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_security_headers(scope, send)
        allowed: list[str] = []
        try:
            self._check_address(scope)
            self._check_headers(scope)
            route, allowed = self._match(scope)
            if scope["method"] == "OPTIONS" and allowed:
                await self._answer_options(scope, send, allowed)
                return
            if route is None and allowed:
                raise _Refused(MethodNotAllowed())
            rule = self._rule(route)
            headers = Headers(scope=scope)
            self._check_size_header(headers, rule)
            if rule.streams:
                self._check_media_type(headers, rule, has_body=True, body=None)
                await self.app(scope, self._counting(receive, rule.limit), send)
                return
            body, receive = await self._buffer(receive, rule.limit)
            self._check_media_type(headers, rule, has_body=bool(body), body=body)
            self._check_content(headers, body)
        except _Refused as refused:
            await self._answer(scope, send, refused.error, allowed=allowed)
            return
        await self.app(scope, receive, send)

    # --- the checks ------------------------------------------------------------------------

    def _check_address(self, scope: Scope) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        query: bytes = scope.get("query_string", b"")
        if len(raw_path) + len(query) > self.settings.max_url_bytes:
            raise _Refused(UriTooLong())
        _check_bytes(unquote_to_bytes(raw_path), "path", _CONTROL_IN_ADDRESS)
        for pair in query.split(b"&"):
            for part in pair.split(b"=", 1):
                _check_bytes(unquote_to_bytes(part.replace(b"+", b" ")), "query", _CONTROL_IN_TEXT)

    def _check_headers(self, scope: Scope) -> None:
        headers = scope.get("headers", ())
        size = sum(len(name) + len(value) + 4 for name, value in headers)  # ": " and CRLF
        if size > self.settings.max_header_bytes:
            raise _Refused(
                HeaderFieldsTooLarge(data=[{"limitBytes": self.settings.max_header_bytes}])
            )
        for name, value in headers:
            if _CONTROL_IN_HEADER.search(value):
                raise _Refused(
                    InvalidInput(
                        N_("A request header holds a control character."),
                        source=name.decode("latin-1")[:100],
                    )
                )

    def _match(self, scope: Scope) -> tuple[Any, list[str]]:
        """The route that takes this request, and the methods the path allows.

        The same order as the router's own matching; plain routes are matched by their
        compiled path alone (the framework's ``matches`` also converts parameters, which
        costs ten times as much and tells us nothing more here).
        """
        if self._table is None:  # the routes are all included before the first request
            self._table = [
                (getattr(leaf, "path_regex", None), getattr(leaf, "methods", None), leaf)
                for leaf in _leaf_routes(self.fastapi_app.router.routes)
            ]
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]  # as the router sees it under a mount
        method = scope["method"]
        allowed: set[str] = set()
        for regex, methods, route in self._table:
            if isinstance(route, Mount) or regex is None:
                match, _child = route.matches(scope)
                if match == Match.NONE:
                    continue
                if isinstance(route, Mount):
                    static = {"GET", "HEAD"}
                    return (route if method in static else None), sorted(static | {"OPTIONS"})
                if match == Match.FULL:
                    return route, sorted(set(methods or ()) | allowed | {"OPTIONS"})
                allowed |= set(methods or ())
                continue
            if not regex.match(path):
                continue
            if not methods or method in methods:
                return route, sorted(set(methods or ()) | allowed | {"OPTIONS"})
            allowed |= set(methods)
        if allowed:
            # Every route on this path, not only the first: GET and POST are often two routes.
            return None, sorted(allowed | {"OPTIONS"})
        return None, []

    def _rule(self, route: Any) -> _RouteRule:
        if route is None:
            return _RouteRule(None, self.settings.max_body_bytes, streams=False)
        rule = self._rules.get(id(route))
        if rule is None:
            rule = self._rules[id(route)] = _rule_for(route, self.settings)
        return rule

    def _check_size_header(self, headers: Headers, rule: _RouteRule) -> None:
        length = headers.get("content-length")
        if length is None:
            return
        if not length.strip().isdigit():
            raise _Refused(InvalidInput(N_("The Content-Length header is not a number.")))
        if int(length) > rule.limit:
            raise _Refused(PayloadTooLarge(data=[{"limitBytes": rule.limit}]))

    def _check_media_type(
        self, headers: Headers, rule: _RouteRule, *, has_body: bool, body: bytes | None
    ) -> None:
        if not has_body or rule.kind is None:
            return
        declared = headers.get("content-length") not in (None, "0")
        if body is None and not declared and "chunked" not in headers.get("transfer-encoding", ""):
            return
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if rule.kind == "json":
            if media in _JSON_TYPES or (media.startswith("application/") and "+json" in media):
                return
            raise _Refused(UnsupportedMediaType(data=[{"accepted": ["application/json"]}]))
        if media not in _FORM_TYPES:
            raise _Refused(UnsupportedMediaType(data=[{"accepted": list(_FORM_TYPES)}]))

    def _check_content(self, headers: Headers, body: bytes) -> None:
        if not body:
            return
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media in _JSON_TYPES or media.endswith("+json"):
            _check_json(body)
        elif media == "application/x-www-form-urlencoded":
            for pair in body.split(b"&"):
                for part in pair.split(b"=", 1):
                    raw = unquote_to_bytes(part.replace(b"+", b" "))
                    _check_bytes(raw, "form", _CONTROL_IN_TEXT)

    # --- bodies --------------------------------------------------------------------------

    async def _buffer(self, receive: Receive, limit: int) -> tuple[bytes, Receive]:
        """Read the whole body (at most ``limit`` bytes); a receive that replays it."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: pass that on to the app as it is.
                return b"", _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Refused(PayloadTooLarge(data=[{"limitBytes": limit}]))
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        return body, _replay([{"type": "http.request", "body": body, "more_body": False}], receive)

    def _counting(self, receive: Receive, limit: int) -> Receive:
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise _BodyTooLarge()
            return message

        return counted

    # --- answers -------------------------------------------------------------------------

    def _with_security_headers(self, scope: Scope, send: Send) -> Send:
        extra = self._security_headers()
        path: str = scope.get("path", "")
        docs_page = path in ("/docs", "/redoc", "/docs/oauth2-redirect")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    key = name.decode("latin-1")
                    if docs_page and key == "content-security-policy":
                        continue  # the interactive docs (off in production) load their own assets
                    if key not in headers:
                        headers.append(key, value.decode("latin-1"))
            await send(message)

        return sending

    async def _answer(
        self, scope: Scope, send: Send, error: DomainError, *, allowed: list[str] | None
    ) -> None:
        from partnercenter.errors import error_response

        async def no_body() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        request = Request(scope, no_body)
        request.state.correlation_id = scope.get("state", {}).get("correlation_id")
        response = error_response(request, error.status, error.body())
        if isinstance(error, MethodNotAllowed) and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        if error.status in (413, 414, 431):
            response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, no_body, send)

    async def _answer_options(self, scope: Scope, send: Send, allowed: list[str]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [(b"allow", ", ".join(allowed).encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _check_bytes(raw: bytes, where: str, controls: re.Pattern[bytes]) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(
            InvalidInput(N_("The request holds bytes that are not UTF-8 text."), source=where)
        ) from None
    if controls.search(raw):
        raise _Refused(
            InvalidInput(
                N_("The request holds a control character (such as NUL) where text is expected."),
                source=where,
            )
        )


def _refuse_constant(name: str) -> Any:
    raise _Refused(InvalidInput(N_("NaN and Infinity are not numbers JSON allows."), source="body"))


def _bounded_int(text: str) -> int:
    if len(text) > 20 or abs(int(text)) > _INT64:
        raise _Refused(InvalidInput(N_("A number in the request is out of range."), source="body"))
    return int(text)


def _check_json(body: bytes) -> None:
    """Refuse JSON whose text no part of the application could store or handle."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(
            InvalidInput(N_("The request holds bytes that are not UTF-8 text."), source="body")
        ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except RecursionError:
        raise _Refused(InvalidInput(N_("The JSON nests too deeply."), source="body")) from None
    except ValueError:
        return  # not JSON at all: FastAPI's parser answers 400 saying where
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise _Refused(InvalidInput(N_("The JSON nests too deeply."), source="body"))
        if isinstance(item, str):
            if _BAD_TEXT.search(item):
                raise _Refused(
                    InvalidInput(
                        N_(
                            "Text may not contain NUL characters, control characters or "
                            "lone surrogates."
                        ),
                        source="body",
                    )
                )
        elif isinstance(item, dict):
            for key, sub in item.items():
                stack.append((key, depth + 1))
                stack.append((sub, depth + 1))
        elif isinstance(item, list):
            stack.extend((sub, depth + 1) for sub in item)
