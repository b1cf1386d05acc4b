"""Fault injection for the reliability tests; does nothing unless ZERO_FAULT_INJECT is set.

ZERO_FAULT_INJECT is a comma-separated list of pause points (or `all`). At an enabled point the
process prints `fault-inject: POINT DETAIL` to stderr and sleeps ZERO_FAULT_SLEEP seconds
(default 1), so that a test can SIGKILL it exactly there:

- sleep_in_validate: validation ran and its validation.jsonl record is written; the
  checkpoint of that step is not written yet
- sleep_in_save: a checkpoint's files are written, but the `checkpoint` state file does not
  list it yet (and best/ is not updated yet)
- sleep_in_best: inside the best/ swap, between `best -> best.old` and `best.tmp -> best`
"""

import os
import sys
import time

POINTS = ("sleep_in_validate", "sleep_in_save", "sleep_in_best")


def pause(point, detail=""):
    spec = os.environ.get("ZERO_FAULT_INJECT")
    if not spec:
        return
    enabled = {name.strip() for name in spec.split(",")}
    if point in enabled or "all" in enabled:
        print(f"fault-inject: {point} {detail}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("ZERO_FAULT_SLEEP", "1")))
