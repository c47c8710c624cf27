"""Response headers required by SECURITY.md, on every response.

The Content-Security-Policy allows scripts only from this origin and with the per-request nonce
(``csp_nonce()`` in templates); no inline script, no CDN, no plugins, no framing.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request

STATIC_ENDPOINTS = frozenset({"static", "bootstrap.static"})


def csp_nonce() -> str:
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def content_security_policy(nonce: str) -> str:
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def set_security_headers(response: Response, hsts: bool) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(csp_nonce())
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if request.endpoint not in STATIC_ENDPOINTS:
        # Nothing this app renders may be kept by a browser or a proxy (shared computers).
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
        headers.add("Vary", "Cookie")
    return response


def init_app(app: Flask) -> None:
    hsts = bool(app.config.get("HSTS_ENABLED"))
    app.after_request(lambda response: set_security_headers(response, hsts))
    app.jinja_env.globals["csp_nonce"] = csp_nonce
