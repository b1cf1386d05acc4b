"""What the server accepts: a request body checked item by item. Every fault is a BadRequest
with one line that names the item and field at fault (status 400), or the limit and its config
key (413), never a traceback.

A translation request is a JSON list of items {"src": "raw sentence", "id": ANY, "n_best": K}
("id" and "n_best" optional: OpenNMT-py's clients send their model id, which is echoed).
"""

import json

SHOWN = 40  # characters of an offending value quoted in a message


class BadRequest(Exception):
    """A fault of the client's request: `status` 400, or 413 for a request over a limit."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class Item:
    """One sentence of a request: its text, how many hypotheses it wants, the id it gave."""

    def __init__(self, src, n_best, fields):
        self.src, self.n_best = src, n_best
        self.has_id, self.id = "id" in fields, fields.get("id")


def _kind(value):
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    names.update({int: "a number", float: "a number", type(None): "null"})
    return names.get(type(value), type(value).__name__)


def _shown(value):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def parse_json(raw):
    """The request body's bytes -> the JSON value: UTF-8 and JSON are checked, each fault
    named with where it is."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(
            f"the body is not valid UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start}"
        ) from None
    if not text.strip():
        raise BadRequest('the body is empty: send a JSON list of {"src": ...} items')
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadRequest(
            f"the body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    except ValueError as e:  # a number of more than 4300 digits, say
        raise BadRequest(
            f"the body is not JSON this server reads: {str(e).split(';')[0]}"
        ) from None
    except RecursionError:
        raise BadRequest("the body is not JSON this server reads: nested too deeply") from None


def translate_items(body, config):
    """A translation request's JSON value -> [Item], checked against the config's limits."""
    if not isinstance(body, list):
        raise BadRequest(f'the body must be a JSON list of {{"src": ...}} items, got {_kind(body)}')
    if not body:
        raise BadRequest('the body is an empty list: send at least one {"src": ...} item')
    if len(body) > config.serve_max_items:
        raise BadRequest(
            f"{len(body)} items in one request; the limit is {config.serve_max_items} "
            "(config key serve_max_items)",
            413,
        )
    return [_item(value, f"item {index}", config) for index, value in enumerate(body)]


def _item(value, where, config):
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: must be an object with a 'src' field, got {_kind(value)}")
    src = check_src(value, where, config)
    n_best = value.get("n_best", 1)
    if isinstance(n_best, bool) or not isinstance(n_best, int):
        raise BadRequest(f"{where}: 'n_best' must be an integer, got {_shown(n_best)}")
    if not 1 <= n_best <= config.beam_size:
        raise BadRequest(
            f"{where}: 'n_best' must be from 1 to {config.beam_size} (the beam size), got {n_best}"
        )
    return Item(src, n_best, value)


def check_src(fields, where, config):
    """The 'src' field of an object: a non-blank string within serve_max_chars."""
    if "src" not in fields:
        raise BadRequest(f"{where}: no 'src' field (the sentence to translate)")
    src = fields["src"]
    if not isinstance(src, str):
        raise BadRequest(f"{where}: 'src' must be a string, got {_kind(src)}")
    if not src.strip():
        raise BadRequest(f"{where}: 'src' is empty")
    if len(src) > config.serve_max_chars:
        raise BadRequest(
            f"{where}: 'src' has {len(src)} characters; the limit is {config.serve_max_chars} "
            "(config key serve_max_chars)",
            413,
        )
    try:
        src.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate such as "\ud800" in the JSON
        raise BadRequest(f"{where}: 'src' is not valid Unicode at character {e.start}") from None
    return src


def weights_src(body, config):
    """A token-weight request's JSON value {"src": ...} -> the sentence."""
    if not isinstance(body, dict):
        raise BadRequest(f'the body must be a JSON object {{"src": ...}}, got {_kind(body)}')
    return check_src(body, "the request", config)
