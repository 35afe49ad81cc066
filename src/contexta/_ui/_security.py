"""What stands between the dashboard and the rest of the machine (and the web): one ASGI middleware.

A server on 127.0.0.1 is still reachable from every page the user's browser opens. So:
- the Host header must name the address the server is bound to (or localhost, when that is a
  loopback address): a page of another site whose name was rebound to 127.0.0.1 (DNS rebinding)
  is refused, 421, before any handler runs. A server bound to a wildcard address (0.0.0.0) cannot
  know its names; it is only started with a token, which rebinding cannot supply;
- with a token, every request must bring it: `Authorization: Bearer T`, or the HttpOnly SameSite=Strict
  cookie that visiting `/?token=T` once sets (the URL the command prints), so the token leaves the
  address bar at once and no other site's request carries it; the cookie is named for the server's
  port, so a second dashboard on the same machine does not replace it;
- no response carries CORS headers, so no other origin may read one; a strict Content-Security-Policy
  allows only the package's own scripts and styles (no inline script, no eval), and nothing is framed.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TOKEN_COOKIE", "Guard", "allowed_host_names", "is_loopback", "is_wildcard", "token_cookie"]

TOKEN_COOKIE: Final = "contexta_ui_token"

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_SECURITY_HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1)."""
    address = _address(host)
    return host.lower() == "localhost" if address is None else address.is_loopback


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or :: (every interface), or an empty host."""
    address = _address(host)
    return host == "" or (address is not None and address.is_unspecified)


def allowed_host_names(bound_host: str) -> frozenset[str] | None:
    """The names a request's Host header may give for a server bound to `bound_host` (lower case,
    without port or brackets); None: any (a wildcard bind, which needs a token)."""
    if is_wildcard(bound_host):
        return None
    name = bound_host.strip("[]").lower()
    return frozenset({name, *_LOOPBACK_NAMES}) if is_loopback(name) else frozenset({name})


def _host_name(header: str) -> str:
    """`example.com:8080` -> `example.com`; `[::1]:8080` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def token_cookie(port: int | None) -> str:
    """The token cookie's name for a server on `port`: a browser keeps one cookie per name for a
    host whatever its port, so two dashboards on one machine each need their own."""
    return TOKEN_COOKIE if port is None else f"{TOKEN_COOKIE}_{port}"


def _port(scope: Scope) -> int | None:
    server = scope.get("server")
    return None if server is None or server[1] is None else int(server[1])


def _cookie_value(token: str) -> str:
    """The token as the cookie holds it: percent-encoded, so that a token with a space, `;`, `"` or a
    non-ASCII letter is never quoted by the cookie rules (and sent back quoted, which would not match)."""
    return quote(token, safe="")


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


_log = logging.getLogger("contexta.ui")


class Guard:
    """The middleware: Host check, token check and security headers on every HTTP response."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str] | None, token: str | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not name.lower().startswith(b"access-control-")
                ]
                message = {**message, "headers": [*headers, *_SECURITY_HEADERS]}
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's own 500 is made outside this middleware, without the headers above: answer
            # here instead (the traceback goes to the server's log, never to the page).
            _log.exception("contexta ui: %s %s failed", scope.get("method"), scope.get("path"))
            if not started:
                failure = _error(500, "internal_error", "the dashboard failed to answer; its log says why")
                await failure(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        host = _host_name(headers.get("host", ""))
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return _error(421, "host_not_allowed", "this server answers only to the address it is bound to")
        if self.token is None:
            return None
        cookie = token_cookie(_port(scope))
        if self._carries_token(headers, cookie):
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for name, value in query if name == "token"]
        if given and hmac.compare_digest(given[-1].encode(), self.token.encode()):
            # Once: the token becomes a cookie no other site's request carries, and leaves the URL.
            rest = urlencode([(name, value) for name, value in query if name != "token"])
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(cookie, _cookie_value(self.token), httponly=True, samesite="strict", path="/")
            return response
        return _error(
            401, "token_required", "this dashboard needs its access token (open the URL it printed)"
        )

    def _carries_token(self, headers: Headers, cookie: str) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(bearer.strip().encode(), expected):
            return True
        in_cookie = _cookie_value(self.token).encode()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == cookie and hmac.compare_digest(value.encode(), in_cookie):
                return True
        return False
