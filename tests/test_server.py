"""The translation server (--mode serve, zero/server/): its API answers as translate mode does;
bad input gets a one-line JSON 400/413 and the next request is served; concurrent clients share
decoding batches and each gets its own answers; the script prints the port it bound; the page
works in a real headless browser. Everything runs on loopback with a tiny model."""

import http.client
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import types

import numpy as np
import pytest
from served_model import ROOT, prepare_slice, random_model

from zero import config as config_lib
from zero import onednn
from zero.batching import cut_batches
from zero.errors import UserError
from zero.modes import MODES
from zero.server.batcher import Batcher
from zero.server.engine import split_budget, weights_unavailable, weights_view
from zero.server.http_server import Server

DECODE = {"max_decode_extra": 3, "beam_size": 3}  # short outputs (random weights)
HANG_GUARD = 300  # seconds before a test gives up waiting (a hang, not a speed check)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL_CHROMIUM = "apt-get install -y chromium chromium-driver"


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def model_config(model_dir, **sets):
    sets = {"output_dir": model_dir, "port": 0, **sets}
    return config_lib.load(
        os.path.join(model_dir, "config.yaml"), [f"{k}={v}" for k, v in sets.items()]
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(model directory, test sentences, translate mode's translation of each)."""
    work = tmp_path_factory.mktemp("server")
    prep = prepare_slice(str(work), n_test=60)
    model_dir = str(work / "model")
    # Seed 1 and sentences of at most 60 subwords: no near-tied decisions, so a sentence's
    # translation does not depend on the batch it is decoded in (docs/DESIGN.md, "Decoding":
    # rounding). Checked over 1740 random batchings of these sentences.
    random_model(model_dir, prep, "lrn", seed=1, **DECODE)
    bpe = lines_of(os.path.join(prep, "test.bpe.en"))
    raw = lines_of(os.path.join(prep, "test.en"))
    sentences = [s for s, b in zip(raw, bpe, strict=True) if len(b.split()) <= 60]
    source, output = work / "test.en", str(work / "translate.de")
    source.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    MODES["translate"](model_config(model_dir, input=str(source), output=output))
    expected = dict(zip(sentences, lines_of(output), strict=True))
    assert len(sentences) > 30 and len(set(expected.values())) > 20
    return model_dir, sentences, expected


class Running:
    """A Server run by a thread of the test process."""

    def __init__(self, config):
        self.server = Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.stop()
        self.thread.join(HANG_GUARD)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def server(model):
    running = Running(model_config(model[0]))
    yield running.server
    running.stop()


def request(server, method, path, body=None, connection=None):
    """(status, JSON answer); `body` bytes or a JSON value."""
    conn = connection or http.client.HTTPConnection(server.host, server.port, timeout=HANG_GUARD)
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if connection is None:
        conn.close()
    assert response.getheader("Content-Type") == "application/json", data[:200]
    return response.status, json.loads(data)


def translate(server, items, connection=None):
    status, answer = request(server, "POST", "/translator/translate", items, connection)
    assert status == 200, answer
    return answer


# -- the API ----------------------------------------------------------------------------------


def test_api_equals_translate_mode(server, model):
    _, sentences, expected = model
    items = [{"src": s, "id": 100 + i} for i, s in enumerate(sentences)]
    [answers] = translate(server, items)
    assert [a["tgt"] for a in answers] == [expected[s] for s in sentences]
    assert [a["src"] for a in answers] == sentences
    assert [a["id"] for a in answers] == [100 + i for i in range(len(sentences))]
    assert all(a["n_best"] == 1 and isinstance(a["pred_score"], float) for a in answers)
    # Alone, each sentence gets the same translation and score.
    for answer in answers[:3]:
        [[alone]] = translate(server, [{"src": answer["src"]}])
        assert alone["tgt"] == answer["tgt"] and "id" not in alone
        assert alone["pred_score"] == pytest.approx(answer["pred_score"], abs=1e-4)


def test_n_best(server, model):
    _, sentences, expected = model
    ranks = translate(server, [{"src": sentences[0], "n_best": 3}, {"src": sentences[1]}])
    assert len(ranks) == 3
    assert [e["src"] for e in ranks[0]] == sentences[:2]
    assert [e["src"] for e in ranks[1]] == [e["src"] for e in ranks[2]] == sentences[:1]
    assert ranks[0][0]["tgt"] == expected[sentences[0]]
    assert ranks[0][1]["tgt"] == expected[sentences[1]] and ranks[0][1]["n_best"] == 1
    scores = [ranks[k][0]["pred_score"] for k in range(3)]
    assert scores == sorted(scores, reverse=True)
    assert all(ranks[k][0]["n_best"] == 3 for k in range(3))


def test_health_and_models(server, model):
    assert request(server, "GET", "/translator/health") == (200, {"status": "ok"})
    status, [info] = request(server, "GET", "/translator/models")
    assert status == 200
    assert info["model_dir"] == os.path.abspath(model[0])
    assert info["cell"] == "lrn" and info["precision"] == "float32"
    assert info["checkpoint_step"] == 1 and info["parameters"] > 1000
    assert info["weights"] is True and info["weights_unavailable"] is None
    assert info["cpu_kernels"] == onednn.chosen()


def test_weights_view(server, model):
    status, view = request(server, "POST", "/translator/weights", {"src": model[1][0]})
    assert status == 200, view
    n = len(view["tokens"])
    assert view["tokens"][-1] == "</s>" and view["final"] == n - 1
    [part] = view["parts"]
    assert len(part["final"]) == n and len(part["matrix"]) == n
    assert part["final"] == part["matrix"][-1]
    assert all(w == 0 for t, row in enumerate(part["matrix"]) for w in row[t + 1 :])
    status, answer = request(server, "POST", "/translator/weights", [{"src": "a"}])
    assert status == 400 and "JSON object" in answer["error"]
    status, answer = request(server, "POST", "/translator/weights", {"src": "word " * 120})
    assert (
        status == 413
        and "tokens with EOS; the token-weight view takes at most 100" in answer["error"]
    )


def test_weights_view_of_two_parts_right_to_left():
    """The context-aware backward half: two parts, the final state is the first token's."""
    mean_w = np.arange(18, dtype=np.float32).reshape(3, 3, 2) / 100
    record = {
        "cell": "olrn", "layer": 0, "direction": "bw", "final": 0, "mean_w": mean_w,
        "tokens": np.array(["a", "b", "</s>"]), "unk": np.array([False, True, False]),
        "parts": np.array(["x", "fw"]),
    }  # fmt: skip
    view = weights_view(record)
    assert view["state"] == "c_t" and view["unk"] == [False, True, False]
    assert [p["name"] for p in view["parts"]] == ["x", "fw"]
    assert view["parts"][1]["final"] == [0.01, 0.03, 0.05]
    assert view["parts"][0]["matrix"][2] == [0.12, 0.14, 0.16]
    json.dumps(view)  # plain JSON types only


def test_no_weights_for_other_cells():
    gru = config_lib.load(None, ["cell=gru"])
    assert "'cell' is 'gru'" in weights_unavailable(gru)
    tanh = config_lib.load(None, ["lrn_activation=tanh"])
    assert "identity" in weights_unavailable(tanh)
    assert weights_unavailable(config_lib.load(None)) is None


# -- bad input --------------------------------------------------------------------------------

LONG = "word " * 401  # 2005 characters, over serve_max_chars (2000)
BAD = [
    # (body, status, what the error names)
    (b"", 400, "the body is empty"),
    (b'[{"src": "a"', 400, "not valid JSON: Expecting"),
    (b"[{'src': 'a'}]", 400, "not valid JSON"),
    (b"[" * 100_000, 400, "nested too deeply"),
    (b'[{"src": "a", "n_best": ' + b"1" * 5000 + b"}]", 400, "Exceeds the limit (4300 digits)"),
    (b'{"src": "a"}', 400, "must be a JSON list"),
    (b"[]", 400, "empty list"),
    (b'["a sentence"]', 400, "item 0: must be an object"),
    (b'[{"id": 100}]', 400, "item 0: no 'src' field"),
    (b'[{"src": "ok"}, {"src": 7}]', 400, "item 1: 'src' must be a string, got a number"),
    (b'[{"src": null}]', 400, "'src' must be a string, got null"),
    (b'[{"src": ["a"]}]', 400, "'src' must be a string, got a list"),
    (b'[{"src": "caf\xe9"}]', 400, "not valid UTF-8: byte 0xe9 at offset 13"),
    (b'[{"src": ""}]', 400, "item 0: 'src' is empty"),
    (b'[{"src": "  \\t "}]', 400, "item 0: 'src' is empty"),
    (b'[{"src": "\\ud800"}]', 400, "'src' is not valid Unicode"),
    (b'[{"src": "a", "n_best": 0}]', 400, "'n_best' must be from 1 to 3"),
    (b'[{"src": "a", "n_best": 9}]', 400, "'n_best' must be from 1 to 3"),
    (b'[{"src": "a", "n_best": "2"}]', 400, "'n_best' must be an integer"),
    (json.dumps([{"src": LONG}]).encode(), 413, "2005 characters; the limit is 2000"),
    (json.dumps([{"src": "a"}] * 65).encode(), 413, "65 items in one request; the limit is 64"),
    (b"[" + b" " * 2_000_000 + b"]", 413, "the body is over"),
]


@pytest.mark.parametrize("body, status, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_gets_a_json_error_and_the_next_request_is_served(
    server, model, body, status, message
):
    got, answer = request(server, "POST", "/translator/translate", body)
    assert got == status
    assert list(answer) == ["error"] and message in answer["error"]
    assert "Traceback" not in answer["error"] and "\n" not in answer["error"]
    sentence = model[1][0]
    assert translate(server, [{"src": sentence}])[0][0]["tgt"] == model[2][sentence]


def test_a_port_in_use_is_named(server, model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}: "):
            Server(model_config(model[0], port=port), engine=server.engine)


def test_wrong_urls_and_methods(server):
    status, answer = request(server, "GET", "/translator/translate")
    assert status == 405 and "method GET not allowed" in answer["error"]
    status, answer = request(server, "POST", "/translator/nothing", [])
    assert status == 404 and "no such endpoint" in answer["error"]


def _disconnect(server, data):
    """A client that sends `data` and hangs up without reading an answer."""
    with socket.create_connection((server.host, server.port), timeout=HANG_GUARD) as sock:
        sock.sendall(data)


def _post_bytes(body, length=None):
    head = (
        "POST /translator/translate HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length or len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_clients_that_hang_up(server, model):
    sentence = model[1][1]
    body = json.dumps([{"src": sentence}]).encode()
    _disconnect(server, _post_bytes(body[:10], length=len(body)))  # mid-body
    _disconnect(server, _post_bytes(body))  # before the answer
    _disconnect(server, b"POST /translator/trans")  # mid-headers
    assert translate(server, [{"src": sentence}])[0][0]["tgt"] == model[2][sentence]


# -- load -------------------------------------------------------------------------------------


def _client(server, sentences, seed, n, answers, errors):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=HANG_GUARD)
    try:
        for i in range(n):
            sentence = rng.choice(sentences)
            [[answer]] = translate(server, [{"src": sentence, "id": seed * 1000 + i}], conn)
            answers.append((seed * 1000 + i, sentence, answer))
    except Exception as e:  # reported by the test, not lost in the thread
        errors.append(repr(e))
    finally:
        conn.close()


def _hang_ups(server, sentences):
    """Clients that hang up mid-body and before their answer, among the others."""
    for sentence in sentences[:10]:
        body = json.dumps([{"src": sentence}]).encode()
        _disconnect(server, _post_bytes(body[:12], length=len(body)))
        _disconnect(server, _post_bytes(body))


def test_concurrent_clients_each_get_their_own_answers(server, model):
    _, sentences, expected = model
    answers, errors = [], []
    spoiler = threading.Thread(target=_hang_ups, args=(server, sentences))
    clients = [
        threading.Thread(target=_client, args=(server, sentences, seed, 25, answers, errors))
        for seed in range(1, 9)
    ]
    batcher = server.batcher
    before = (batcher.batches, batcher.sentences)
    spoiler.start()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(HANG_GUARD)
    spoiler.join(HANG_GUARD)
    assert not errors
    assert len(answers) == 200 and len({key for key, _, _ in answers}) == 200
    for key, sentence, answer in answers:
        assert answer["id"] == key and answer["src"] == sentence
        assert answer["tgt"] == expected[sentence], sentence
    batches, sentences = batcher.batches - before[0], batcher.sentences - before[1]
    assert sentences >= 200 and batches < sentences, "no two sentences shared a decoding batch"


# -- the decoding thread ----------------------------------------------------------------------


class Gate:
    """A decode function that records its batches and holds the first until released."""

    def __init__(self, fail=False):
        self.batches, self.fail = [], fail
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, sentences, n_best, batch_tokens):
        self.batches.append([s[0] for s in sentences])
        self.entered.set()
        self.release.wait(HANG_GUARD)
        if self.fail and len(self.batches) == 1:
            raise ValueError("broken batch")
        return [[(" ".join(s), -1.0), ("other", -2.0)][:n_best] for s in sentences]


def test_batcher_decodes_what_waits_as_one_batch():
    gate = Gate()
    batcher = Batcher(gate, batch_tokens=100, wait_ms=0)
    [first] = batcher.submit([(["a"], 1)])
    assert gate.entered.wait(HANG_GUARD)
    # While the first batch decodes, five sentences arrive (one longer than the budget).
    jobs = batcher.submit([(["b"], 1), (["c", "c"], 2), (["d"], 1)])
    jobs += batcher.submit([(["e"] * 120, 1), (["f"], 1)])
    gate.release.set()
    assert first.result() == [("a", -1.0)]
    assert [job.result()[0][0].split()[0] for job in jobs] == ["b", "c", "d", "e", "f"]
    assert jobs[1].result() == [("c c", -1.0), ("other", -2.0)] and len(jobs[0].result()) == 1
    batcher.close()
    # Taken together, first come first served, cut where the token budget is full.
    assert gate.batches == [["a"], ["b", "c", "d"], ["e"], ["f"]]


def test_a_failed_batch_fails_its_jobs_only():
    gate = Gate(fail=True)
    batcher = Batcher(gate, batch_tokens=100, wait_ms=0)
    [broken] = batcher.submit([(["a"], 1)])
    gate.release.set()
    with pytest.raises(ValueError, match="broken batch"):
        broken.result()
    [fine] = batcher.submit([(["b"], 1)])
    assert fine.result() == [("b", -1.0)]
    batcher.close()


# -- the script -------------------------------------------------------------------------------


def _lines(stream, into):
    for line in iter(stream.readline, b""):
        into.put(line.decode("utf-8", "replace"))
    into.put(None)


@pytest.mark.slow
def test_serve_script_prints_the_port_it_bound(model):
    model_dir, sentences, expected = model
    proc = subprocess.Popen(
        ["bash", os.path.join(ROOT, "scripts", "serve.sh"), model_dir, "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "ZERO_PYTHON": sys.executable},
    )
    lines, seen = queue.Queue(), []
    threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True).start()
    try:
        while not seen or not seen[-1].startswith("serving on http://127.0.0.1:"):
            line = lines.get(timeout=HANG_GUARD)
            assert line is not None, "the server stopped: " + "".join(seen)
            seen.append(line)
        port = int(seen[-1].strip().rsplit(":", 1)[1])
        assert port > 0
        target = types.SimpleNamespace(host="127.0.0.1", port=port)
        assert request(target, "GET", "/translator/health") == (200, {"status": "ok"})
        [[answer]] = translate(target, [{"src": sentences[2], "id": 100}])
        assert answer["tgt"] == expected[sentences[2]]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=HANG_GUARD) == 0
        rest = []
        while (line := lines.get(timeout=HANG_GUARD)) is not None:
            rest.append(line)
        assert "stopped: 1 sentences decoded in 1 batches (at most 1 in one)" in "".join(rest)
    finally:
        if proc.poll() is None:
            proc.kill()


# -- the page ---------------------------------------------------------------------------------


def test_the_page_loads_nothing_from_elsewhere():
    static = os.path.join(ROOT, "zero", "server", "static")
    for name in ("index.html", "page.js", "page.css"):
        with open(os.path.join(static, name), encoding="utf-8") as f:
            text = f.read()
        assert not re.search(r"https?:|(src|href)\s*=\s*[\"']//|@import|url\(", text), name


CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1100,1180",
]


def _browser(profile):
    """Debian's chromium driven by Selenium, from fixed paths: nothing is downloaded."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"no {CHROMIUM} / {CHROMEDRIVER}: install them with `{INSTALL_CHROMIUM}`")
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="pip install -r requirements-dev.txt (selenium)"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def page_server(server, model):
    """(server, sentence) the page is tried on: the tiny model's, or with ZERO_SCREENSHOT_MODEL
    set (a trained model directory, for the README's screenshot) a server on that one."""
    model_dir = os.environ.get("ZERO_SCREENSHOT_MODEL")
    if not model_dir:
        yield server, model[1][0]
        return
    running = Running(model_config(model_dir))
    yield running.server, "Click the Save button to keep your changes in the current file."
    running.stop()


@pytest.mark.slow
def test_the_page_translates_and_draws_the_token_weights(page_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, sentence = page_server
    [[expected]] = translate(server, [{"src": sentence}])
    _, view = request(server, "POST", "/translator/weights", {"src": sentence})
    driver = _browser(tmp_path / "chromium-profile")
    try:
        driver.get(server.url + "/")
        wait = WebDriverWait(driver, HANG_GUARD)
        wait.until(lambda d: "parameters" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "src").send_keys(sentence)
        driver.find_element(By.ID, "translate").click()
        wait.until(lambda d: d.find_element(By.ID, "weights").is_displayed())
        assert driver.find_element(By.ID, "tgt").text == expected["tgt"]
        assert float(driver.find_element(By.ID, "score").text) == pytest.approx(
            expected["pred_score"], abs=1e-4
        )
        tokens = driver.find_elements(By.CSS_SELECTOR, "#weights-parts .bar-token")
        assert [t.text for t in tokens] == view["tokens"]
        bars = driver.find_elements(By.CSS_SELECTOR, "#weights-parts .bar")
        widths = [b.size["width"] for b in bars]
        assert len(bars) == len(view["tokens"]) and max(widths) > 0
        heatmap = driver.find_element(By.CSS_SELECTOR, "#weights-parts canvas.heatmap")
        assert heatmap.size["width"] > 100
        assert not driver.find_element(By.ID, "error").is_displayed()
        if os.environ.get("ZERO_SCREENSHOT"):
            driver.save_screenshot(os.environ["ZERO_SCREENSHOT"])
        # A fault shows the server's message on the page.
        driver.find_element(By.ID, "src").clear()
        driver.find_element(By.ID, "translate").click()
        wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
        assert "'src' is empty" in driver.find_element(By.ID, "error").text
    finally:
        driver.quit()


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_a_server_batch_is_cut_into_parallel_parts(parts):
    """split_budget cuts a server batch into about decode_parallel_batches length-sorted parts,
    never more than the sentences and never over the configured budget."""
    sentences = [["w"] * n for n in (3, 9, 1, 4, 7, 2, 8, 5)]
    lens = np.array([len(s) for s in sentences])
    order = np.argsort(lens, kind="stable")
    budget = split_budget(sentences, 4000, parts)
    assert budget <= 4000
    cut = cut_batches(order, lens + 1, None, budget)
    assert len(cut) == parts and sum(b - a for a, b in cut) == len(sentences)
    assert split_budget(sentences[:1], 4000, parts) == 4000
    assert split_budget(sentences, 40, 2) == 40  # the budget caps it
