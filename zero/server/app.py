"""The HTTP side of the server, a Flask app (waitress serves it, zero/server/http_server.py):

    POST /translator/translate   [{"src": "raw sentence", "id": 100, "n_best": 1}, ...]
                                 -> [[{"src", "tgt", "pred_score", "n_best", "id"}, ...], ...]
    POST /translator/weights     {"src": "raw sentence"} -> the LRN token-weight view
    GET  /translator/health      {"status": "ok"}
    GET  /translator/models      [what the loaded model is]
    GET  /                       the page (static/: plain HTML, CSS and JavaScript, offline)

The answer's shape is OpenNMT-py's server's: list k holds the k-th best translation of every
item, in request order (one list for n_best 1). Every fault is answered with one JSON line
{"error": ...}: 400 or 413 for the client's, 404/405 for a wrong URL or method, 500 (logged
here with its traceback, never sent) for the server's own.
"""

import os
import traceback

from flask import Flask, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from zero import log
from zero.server.checks import BadRequest, parse_json, translate_items, weights_src

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
API = "/translator"


def body_limit(config):
    """Bytes of the largest body the item limits allow (a character may take 12 bytes as a JSON
    escaped surrogate pair, an item's other fields a few hundred): larger ones get a 413
    before they are read."""
    return config.serve_max_items * (12 * config.serve_max_chars + 512) + 1024


def create_app(engine, batcher, config):
    app = Flask(__name__, static_folder=STATIC, static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = body_limit(config)
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    _routes(app, engine, batcher, config)
    _error_handlers(app)
    return app


def _routes(app, engine, batcher, config):
    @app.get("/")
    def page():
        return send_from_directory(STATIC, "index.html")

    @app.get(API + "/health")
    def health():
        return jsonify(status="ok")

    @app.get(API + "/models")
    def models():
        return jsonify([engine.info])

    @app.post(API + "/translate")
    def translate():
        with batcher.coming():  # the decoding thread may wait for this request's sentences
            items = translate_items(parse_json(request.get_data(cache=False)), config)
            tokens = engine.tokenize([item.src for item in items])
            todo = [i for i, t in enumerate(tokens) if t]
            jobs = batcher.submit([(tokens[i], items[i].n_best) for i in todo])
        return jsonify(translate_answer(engine, items, todo, jobs))

    @app.post(API + "/weights")
    def weights():
        src = weights_src(parse_json(request.get_data(cache=False)), config)
        return jsonify(engine.weights(src))


def translate_answer(engine, items, todo, jobs):
    """The answer once the decoding thread has decoded the jobs of items[todo]; the request's
    own thread tokenized them and detokenizes the translations."""
    # A sentence with no tokens (only control characters, say) translates to "", as in
    # translate mode.
    found = [[("", 0.0)] for _ in items]
    for i, job in zip(todo, jobs, strict=True):
        found[i] = engine.detokenize(job.result())
    return opennmt_layout(items, found)


def opennmt_layout(items, found):
    """List k: the k-th best translation of each item that has one, in request order."""
    ranks = [[] for _ in range(max((len(hyps) for hyps in found), default=0))]
    for item, hyps in zip(items, found, strict=True):
        for k, (text, score) in enumerate(hyps):
            entry = {"src": item.src, "tgt": text, "pred_score": score, "n_best": item.n_best}
            if item.has_id:
                entry["id"] = item.id
            ranks[k].append(entry)
    return ranks


def _http_message(e):
    if e.code == 404:
        return f"no such endpoint: {request.method} {request.path} (the API is under {API}/)"
    if e.code == 405:
        return f"method {request.method} not allowed on {request.path}"
    if e.code == 413:
        return (
            f"the body is over {request.max_content_length} bytes, more than serve_max_items "
            "items of serve_max_chars characters can take"
        )
    return f"{e.name}: {' '.join((e.description or '').split())}"


def _error_handlers(app):
    @app.errorhandler(BadRequest)
    def bad_request(e):
        return jsonify(error=str(e)), e.status

    @app.errorhandler(HTTPException)
    def http_error(e):
        return jsonify(error=_http_message(e)), e.code

    @app.errorhandler(Exception)
    def internal_error(e):
        log.warning(f"{request.method} {request.path} failed:\n{traceback.format_exc()}")
        return jsonify(
            error=f"internal error ({type(e).__name__}); the server log has details"
        ), 500
