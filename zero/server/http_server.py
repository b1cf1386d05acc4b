"""The waitress server around the app: the model loaded, the decoding thread started and the
socket bound (port 0: any free port, `url` says which) when a Server exists; `run` serves until
`stop` or Ctrl-C, then closes every connection and stops the threads.
"""

import logging

import waitress
from waitress import wasyncore

from zero.errors import UserError
from zero.server.app import create_app
from zero.server.batcher import Batcher
from zero.server.engine import Engine


def _bound(server):
    """(host, port) a waitress server listens on (the first, if the host named several)."""
    listen = getattr(server, "effective_listen", None)  # a MultiSocketServer
    return listen[0] if listen else (server.effective_host, server.effective_port)


class Server:
    def __init__(self, config, engine=None):
        """`engine`: an Engine already loaded (the tests serve one model several times)."""
        self.engine = engine if engine is not None else Engine(config)
        self.batcher = Batcher(self.engine.decode, config.serve_batch_tokens, config.serve_wait_ms)
        app = create_app(self.engine, self.batcher, config)
        # Requests queueing for a worker thread are normal under load, not a warning.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self._sockets = {}  # waitress's map of the listening socket and every connection
        try:
            self.http = waitress.create_server(
                app,
                map=self._sockets,
                host=config.host,
                port=config.port,
                threads=config.serve_threads,
                ident="zero-lrn",
            )
        except OSError as e:
            self.batcher.close()
            raise UserError(
                f"config keys 'host', 'port': cannot listen on {config.host}:{config.port}: "
                f"{e.strerror or e}"
            ) from None
        host, port = _bound(self.http)
        self.host, self.port = host, port
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self):
        """Serve until stop() or Ctrl-C; then close the connections and stop the threads."""
        try:
            self.http.run()
        finally:
            wasyncore.close_all(self._sockets)
            self.http.task_dispatcher.shutdown()
            self.batcher.close()

    def stop(self):
        """From any thread: the server's own loop closes every socket, so run() returns."""
        self.http.trigger.pull_trigger(lambda: wasyncore.close_all(self._sockets))
