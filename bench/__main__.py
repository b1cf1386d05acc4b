"""python -m bench NAME [options]: run one benchmark; without NAME (or with --help), list them.

Each benchmark is a module of this package with add_arguments(parser) and main(args); its
docstring is its --help text and the first line of it its line in the list.
"""

import argparse
import ast
import difflib
import importlib
import importlib.util
import os
import sys

BENCHMARKS = {
    "cells": "bench.cells",
    "model": "bench.model",
    "decode": "bench.decode",
    "serve": "bench.serve",
    "data": "bench.data",
    "precision": "bench.precision",
    "profile": "bench.profile",
    "step": "bench.step",
    "table": "bench.table",
    "loop": "bench.loop",
    "peers": "bench.peers",
    "gpu-ready": "bench.gpu_ready",
    "gpu-speed": "bench.gpu_speed",
}


def summary(module):
    """The first line of a module's docstring, read without importing it (no TensorFlow)."""
    with open(importlib.util.find_spec(module).origin, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.split("\n", 1)[0]


def usage():
    width = max(len(name) for name in BENCHMARKS)
    lines = ["usage: python -m bench NAME [options]   (python -m bench NAME --help: options)"]
    lines += ["", "benchmarks:"]
    lines += [f"  {name:<{width}}  {summary(m)}" for name, m in BENCHMARKS.items()]
    return "\n".join(lines)


def parser_for(name, module):
    parser = argparse.ArgumentParser(
        prog=f"python -m bench {name}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = argv[0]
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, BENCHMARKS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(usage(), file=sys.stderr)
        raise SystemExit(f"\nunknown benchmark {name!r}{hint}")
    module = importlib.import_module(BENCHMARKS[name])
    return module.main(parser_for(name, module).parse_args(argv[1:]))


if __name__ == "__main__":
    # Quiet TensorFlow's C++ start-up lines before a benchmark imports it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from zero import log

    log.import_tensorflow_quietly()
    sys.exit(main())
