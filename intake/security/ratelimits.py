"""Rate limits per client address, as data: which endpoint, which setting.

Each app gets its own Flask-Limiter instance (counters in Redis when REDIS_URL is set, so every
instance of the app shares them; in memory otherwise). Limits apply to POST, where secrets are
guessed and mail is sent; a visitor past the limit gets the 429 page.

When Redis cannot be reached the limits are not counted and the request goes on (the error is
logged), rather than every sign-in, registration and records request failing with a 500 for as
long as the outage lasts. The account lockout, kept in the database, still stops password and code
guessing against any one account meanwhile.
"""

from __future__ import annotations

from functools import partial
from typing import cast

from flask import Flask, request
from flask.typing import RouteCallable
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# endpoint -> name of the setting that holds its limit ("10 per minute;100 per hour").
RATE_LIMITS: dict[str, str] = {
    "auth.login": "RATELIMIT_LOGIN",
    "auth.mfa": "RATELIMIT_MFA",
    "auth.mfa_setup": "RATELIMIT_MFA",
    "account.change_password": "RATELIMIT_MFA",
    "account.recovery_codes": "RATELIMIT_MFA",
    "invitations.accept": "RATELIMIT_RESET",
    "registration.register": "RATELIMIT_REGISTER",
    # Per address like the rest: resends are capped by the same budget as registrations.
    "registration.resend_verification": "RATELIMIT_REGISTER",
    "reset.request_link": "RATELIMIT_RESET",
    # A new records request queues an e-mail and messages are stored encrypted: cap a runaway
    # script, with room for a person correcting a refused form several times.
    "my_requests.new": "RATELIMIT_RECORDS",
    "my_requests.message": "RATELIMIT_RECORDS",
    # Each upload stores up to RECORDS_UPLOAD_MAX_BYTES, encrypted: same budget.
    "my_requests.upload": "RATELIMIT_RECORDS",
    # Access codes typed on a recipient's link page (each link also locks after a few wrong codes).
    "recipient_copy.enter_code": "RATELIMIT_RECIPIENT",
}


def _configured_limit(app: Flask, setting: str) -> str:
    """The limit a setting holds, read at each request (tests change it on a live app)."""
    return str(app.config[setting])


def init_app(app: Flask) -> Limiter:
    """Create the app's limiter and wrap every endpoint named in RATE_LIMITS (call after the
    blueprints are registered)."""
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"],
        swallow_errors=True,  # Redis down: log it and let the request through (see above)
    )
    for endpoint, setting in RATE_LIMITS.items():
        view = app.view_functions.get(endpoint)
        if view is None:
            raise RuntimeError(f"rate limit declared for unknown endpoint {endpoint}")
        limited = limiter.limit(partial(_configured_limit, app, setting), methods=["POST"])(view)
        # The declared policy travels with the view (intake/permissions.py reads it the same way).
        setattr(limited, "required_permission", getattr(view, "required_permission", None))  # noqa: B010
        app.view_functions[endpoint] = cast(RouteCallable, limited)  # the same view, wrapped

    @limiter.request_filter
    def _not_limited() -> bool:
        # Every other request skips Flask-Limiter's lookup of its limits (none): that lookup was
        # about a twelfth of a signed-in request's time (make profile). Limits apply to POST only.
        return request.method != "POST" or request.endpoint not in RATE_LIMITS

    app.extensions["intake_limiter"] = limiter
    return limiter
