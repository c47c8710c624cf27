"""The baseline of ``make bench``: a bare Flask app that answers "hello", served by the same
gunicorn settings as the real app, so every page can be shown as a share of what the stack
(gunicorn, WSGI, Flask routing) does with no work at all.

    .venv/bin/gunicorn --workers 4 --bind 127.0.0.1:8001 "bench.hello:app"
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    """No database, no template, no session: the floor every real page stands on."""
    return "hello"
