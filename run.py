#!/usr/bin/env python3
"""The one entry point: python run.py --mode MODE --config FILE [--set key=value ...].

The modes are registered in zero/modes/__init__.py; this file only parses the command line,
sets up logging and dispatches.
"""

import argparse
import errno
import sys

# OS errors that are the machine's state (disk full, permissions), not a bug: no traceback.
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _parser():
    parser = argparse.ArgumentParser(
        description="Train, decode, score and inspect attentional RNN translation models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", required=True, help="what to do (the modes are listed below)")
    parser.add_argument("--config", help="YAML config (a model directory's config.yaml works)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also show TensorFlow's own log lines"
    )
    return parser


def _epilog():
    from zero.modes import MODES  # after logging is set up: it imports TensorFlow

    width = max(len(name) for name in MODES)
    return "modes:\n" + "\n".join(f"  {name:<{width}}  {m.help}" for name, m in MODES.items())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    from zero import log

    parser = _parser()
    if "-h" in argv or "--help" in argv:
        log.setup("--verbose" in argv)
        parser.epilog = _epilog()
    args = parser.parse_args(argv)

    from zero.errors import UserError

    try:
        from zero import config as config_lib
        from zero import onednn

        # Both before TensorFlow loads (loading the config does): it reads them then.
        onednn.select(config_lib.peek(args.config, args.set, "cpu_kernels"), args.mode)
        log.setup(args.verbose)
        import tensorflow as tf

        tf.compat.v1.disable_eager_execution()
        log.quiet_python_side(args.verbose)
        from zero.modes import MODES

        if args.mode not in MODES:
            raise UserError(MODES.unknown(args.mode))
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
