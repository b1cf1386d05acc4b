"""The translation server under load beside translate mode's batch throughput.

N concurrent clients (threads of this process), each sending one sentence per request and the
next as soon as its answer arrives, against a server this benchmark starts (`--mode serve` in a
child process on port 0) or a running one (--url, serving the same model). It reports
requests/s, sentences/s and the p50/p99 latency, and beside them translate mode's sentences/s
on the same sentences: zero.translate.RawTranslator on all of them at once, in a child process
of its own, measured in the same run (before the server starts, so they do not compete). Each
side runs on the CPU kernels its mode gets from `cpu_kernels` (auto: TensorFlow's own in the
server, TensorFlow's choice in translate mode; --set cpu_kernels=onednn compares). A third
child runs the server's engine alone on --clients sentences per batch, back to back: the
server's speed without HTTP or waiting, so the gap splits into the server's own cost and the
engine's.

    python -m bench serve --model runs/sample_lrn            # 8 clients, 400 sentences
    python -m bench serve --model DIR --clients 1 --sentences 100

The sentences are the first --sentences non-blank lines of DATA/test.en (raw text). The last
line says what share of translate mode's throughput the server reached.
"""

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

import numpy as np

from bench import common
from bench.child import run_in_child
from bench.common import ROOT, check_data, fmt
from zero import onednn

SERVING = "serving on "
HANG_GUARD = 600  # seconds before a request or the server's start counts as hung


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="trained model directory (config.yaml)")
    parser.add_argument(
        "--url", help="a running server of the same model (default: start one on port 0)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--sentences", type=int, default=400, help="sentences of DATA/test.en (default 400)"
    )
    common.add_data_arguments(parser, "the server and translate mode, e.g. threads=2")


def _config(model, sets):
    from zero import config as config_lib

    path = os.path.join(model, "config.yaml")
    return config_lib.load(path, [f"output_dir={model}"] + list(sets))


def translate_throughput(model, sentences, sets):
    """Child process: translate mode's engine on all sentences at once -> sentences/s."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from zero.translate import RawTranslator

    translator = RawTranslator(_config(model, sets))
    translator(sentences[:8])  # warm-up: the graph's first run, the vocabulary table
    start = time.perf_counter()
    out = translator(sentences)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "sentences_per_s": len(sentences) / seconds, "translations": out}


def engine_throughput(model, sentences, clients, sets):
    """Child process (with the server's CPU kernels): the server's engine on `clients`
    sentences at a time, back to back, with no HTTP and no wait between batches: what the
    server would reach if every batch were full and nothing else took time -> sentences/s."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from zero.server.engine import Engine

    config = _config(model, sets)
    engine = Engine(config)
    groups = [sentences[i : i + clients] for i in range(0, len(sentences), clients)]

    def translate(group):
        tokens = engine.tokenize(group)
        for hyps in engine.decode(tokens, 1, config.serve_batch_tokens):
            engine.detokenize(hyps)

    translate(groups[0])  # warm-up
    start = time.perf_counter()
    for group in groups:
        translate(group)
    return {"sentences_per_s": len(sentences) / (time.perf_counter() - start)}


class ServerProcess:
    """`run.py --mode serve` on port 0 in a child process; url from its `serving on` line."""

    def __init__(self, model, sets):
        config = os.path.join(model, "config.yaml")
        cmd = [sys.executable, os.path.join(ROOT, "run.py"), "--mode", "serve"]
        cmd += ["--config", config, "--set", f"output_dir={model}", "--set", "port=0"]
        for item in sets:
            cmd += ["--set", item]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.log = []
        while True:
            line = self.lines.get(timeout=HANG_GUARD)
            if line is None:
                raise SystemExit("the server stopped before serving:\n" + "".join(self.log))
            self.log.append(line)
            if line.startswith(SERVING):
                self.url = line[len(SERVING) :].strip()
                return

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def stop(self):
        """SIGTERM, as a service manager stops it: the server closes its connections; -> its
        last log lines. Not SIGINT: a shell ignores it in background jobs, and so would the
        server started from one."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=HANG_GUARD)
        while (line := self.lines.get(timeout=HANG_GUARD)) is not None:
            self.log.append(line)
        return self.log


def _client(url, work, results):
    """One client: takes (index, sentence) from `work` until it is empty, one per request."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HANG_GUARD)
    try:
        while True:
            try:
                index, sentence = work.get_nowait()
            except queue.Empty:
                return
            body = json.dumps([{"src": sentence, "id": index}])
            start = time.perf_counter()
            conn.request(
                "POST", "/translator/translate", body, {"Content-Type": "application/json"}
            )
            answer = json.loads(conn.getresponse().read())
            latency = time.perf_counter() - start
            results[index] = (answer[0][0]["tgt"], latency)
    finally:
        conn.close()


def load(url, sentences, clients):
    """Every sentence sent by `clients` concurrent clients -> (seconds, translations, latencies)."""
    work = queue.Queue()
    for item in enumerate(sentences):
        work.put(item)
    results = {}
    threads = [threading.Thread(target=_client, args=(url, work, results)) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if len(results) != len(sentences):
        raise SystemExit(f"only {len(results)} of {len(sentences)} requests were answered")
    answers = [results[i] for i in range(len(sentences))]
    return seconds, [text for text, _ in answers], np.array([ms for _, ms in answers]) * 1000


def _sentences(data, count):
    check_data(data, ("test.en",))
    with open(os.path.join(data, "test.en"), encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return [line for line in lines if line.strip()][:count]


def _measure_server(args, sentences):
    """(seconds, translations, latencies ms, the server's log or None) of the load."""
    server = None if args.url else ServerProcess(args.model, args.sets)
    url = args.url or server.url
    log = None
    try:
        load(url, sentences[: 2 * args.clients], args.clients)  # warm-up
        seconds, texts, latencies = load(url, sentences, args.clients)
    finally:
        if server is not None:
            log = server.stop()
    return seconds, texts, latencies, log


def main(args):
    if args.clients < 1 or args.sentences < 1:
        raise SystemExit("--clients and --sentences must be at least 1")
    config = _config(args.model, args.sets)
    sentences = _sentences(args.data, args.sentences)
    n = len(sentences)
    print(f"{n} sentences of {args.data}/test.en, model {args.model}", flush=True)
    base = run_in_child(translate_throughput, model=args.model, sentences=sentences, sets=args.sets)
    print(f"translate mode: {base['sentences_per_s']:.1f} sentences/s", flush=True)
    kernels = onednn.switch(config.cpu_kernels, "serve")
    bound = run_in_child(
        engine_throughput,
        tf_env={} if kernels is None else {onednn.VARIABLE: kernels},
        model=args.model,
        sentences=sentences,
        clients=args.clients,
        sets=args.sets,
    )
    seconds, texts, latencies, log = _measure_server(args, sentences)
    rate = n / seconds
    changed = sum(a != b for a, b in zip(texts, base["translations"], strict=True))
    rows = [
        ("translate mode, all at once", fmt(None, "8"), base["sentences_per_s"], None, None),
        (
            f"server, {args.clients} clients",
            f"{n / seconds:8.1f}",
            rate,
            *np.percentile(latencies, [50, 99]),
        ),
    ]
    print(f"{'':30} {'req/s':>8} {'sent/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, requests, sent, p50, p99 in rows:
        print(f"{name:30} {requests:>8} {sent:8.1f} {fmt(p50, '8.1f')} {fmt(p99, '8.1f')}")
    bound_share = 100 * bound["sentences_per_s"] / base["sentences_per_s"]
    print(
        f"the server's engine alone on {args.clients} sentences per batch, back to back (no "
        f"HTTP, no waiting): {bound['sentences_per_s']:.1f} sentences/s, {bound_share:.0f}% of "
        "translate mode's"
    )
    stopped = [line.strip() for line in log or [] if line.startswith("stopped:")]
    if stopped:
        print(f"server (including the warm-up): {stopped[-1][len('stopped: ') :]}")
    why = "batch rounding"
    if config.shortlist:
        why += "; a shortlist is per batch, and the batches differ"
    print(f"{changed} of {n} translations differ from translate mode's ({why})")
    share = 100 * rate / base["sentences_per_s"]
    print(
        f"Server sentences/s with {args.clients} concurrent clients: {share:.0f}% of "
        "translate mode's batch throughput"
    )
    return 0
