"""serve: the translation server. One model loaded once, an HTTP API in the shape of
OpenNMT-py's server (zero/server/app.py), concurrent requests decoded together by one decoding
thread (zero/server/batcher.py), and a page at / with the LRN token-weight view.

It prints `serving on http://HOST:PORT` (the bound port: `port: 0` takes any free one) when
it accepts requests, and serves until Ctrl-C or SIGTERM.
"""

import signal
import threading

from zero import log, onednn
from zero.modes.mode import Mode


def run(config):
    # Imported here: the other modes need neither Flask nor waitress.
    from zero.server.http_server import Server

    server = Server(config)
    log.info(f"CPU kernels: {onednn.chosen()} (config key cpu_kernels: {config.cpu_kernels})")
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a service manager, `kill`) stops it as Ctrl-C does: connections closed.
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
    log.info(f"serving on {server.url}")
    server.run()
    done = server.batcher
    log.info(
        f"stopped: {done.sentences} sentences decoded in {done.batches} batches "
        f"(at most {done.largest} in one)"
    )


MODE = Mode(
    "serve",
    "HTTP translation server (OpenNMT-py's REST API: POST /translator/translate) and a page "
    "at / with LRN token weights; concurrent requests share decoding batches",
    run,
)
