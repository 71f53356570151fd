"""The floor of the HTTP scenarios: a bare Flask app with one route answering "hello".

Served by the same gunicorn configuration as the portal (bench/http_load.py), it measures
what the server, Flask's routing and the load generator cost on this machine with no
application work at all.

    gunicorn -w "$(nproc)" -k gthread --threads 4 bench.hello_app:app
"""

from __future__ import annotations

from flask import Flask, Response

app = Flask(__name__)


@app.get("/")
def hello() -> Response:
    return Response("hello", mimetype="text/plain")
