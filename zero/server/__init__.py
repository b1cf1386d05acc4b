"""The translation server (`--mode serve`, docs/DESIGN.md "The server"): one loaded model
behind an HTTP API in the shape of OpenNMT-py's server, and a page that uses it.

    checks       what a request must look like; BadRequest (400, or 413 past a limit)
    engine       the model, loaded once: raw-text translation and the LRN token-weight probe
    batcher      the one decoding thread: waiting sentences decoded together (continuous batching)
    app          the Flask app: routes, request checks, JSON errors, the page's static files
    http_server  the waitress server around them: bound, run, stopped
"""
