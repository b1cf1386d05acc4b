#!/usr/bin/env python3
"""The one entry point: python run.py --mode MODE --config FILE [--set key=value ...]."""

import argparse
import difflib
import errno
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# OS errors that are the machine's state (disk full, permissions), not a bug: no traceback.
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Train, decode, score and inspect attentional RNN translation models."
    )
    parser.add_argument(
        "--mode", required=True, help="train, test, score, params, average, translate, ..."
    )
    parser.add_argument("--config", help="YAML config (a model directory's config.yaml works)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )
    args = parser.parse_args(argv)

    from zero.errors import UserError

    try:
        import tensorflow as tf

        tf.compat.v1.disable_eager_execution()
        tf.get_logger().setLevel("ERROR")
        from zero import config as config_lib
        from zero.runner import MODES

        if args.mode not in MODES:
            close = difflib.get_close_matches(args.mode, MODES, n=1, cutoff=0.0)
            raise UserError(
                f"unknown mode '{args.mode}'; choose one of {', '.join(MODES)}"
                + (f"; did you mean '{close[0]}'?" if close else "")
            )
        config = config_lib.load(args.config, args.set)
        MODES[args.mode](config)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in _WRITE_ERRORS:
            raise
        print(
            f"error: {e.filename}: {e.strerror}; free some disk space or fix the permissions "
            "and rerun the same command",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
