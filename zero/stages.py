"""Resumable stages of a long job (corpus preparation): each stage writes `name.tmp` files,
renames them when done and leaves a stamp in OUTDIR/.done recording the settings it ran with.
A stage whose outputs, stamp and settings are complete and newer than its inputs is skipped,
so a rerun after an interruption redoes only unfinished work and a change of settings redoes
the stages it affects.
"""

import json
import os
import time


class Stages:
    def __init__(self, directory, log):
        self.directory = directory
        self.log = log
        self.keys = {}  # stage name -> what its stamp holds

    def _done(self, stamp, key, outputs, inputs):
        if not (os.path.exists(stamp) and all(os.path.exists(o) for o in outputs)):
            return False
        with open(stamp, encoding="utf-8") as f:
            if json.load(f) != key:
                return False
        if inputs:
            newest_in = max(os.path.getmtime(i) for i in inputs)
            return min(os.path.getmtime(o) for o in outputs + [stamp]) >= newest_in
        return True

    def run(self, name, outputs, inputs, settings, build, describe, deps=()):
        """Runs build(tmp_outputs) unless the stage is complete; returns True when it ran.
        The stamp holds this stage's settings and those of the stages it depends on, so a
        changed setting redoes exactly the stages downstream of it."""
        key = {"settings": settings, **{d: self.keys[d] for d in deps}}
        self.keys[name] = key
        stamp = os.path.join(self.directory, ".done", f"{name}.json")
        names = ", ".join(os.path.relpath(o, self.directory) for o in outputs)
        if self._done(stamp, key, outputs, inputs):
            self.log(f"[{name}] already complete: {describe()} -> {names}")
            return False
        if os.path.exists(stamp):
            os.remove(stamp)
        self.log(f"[{name}] running -> {names}")
        start = time.time()
        tmps = [o + ".tmp" for o in outputs]
        build(tmps)
        for tmp, o in zip(tmps, outputs, strict=True):
            os.replace(tmp, o)
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp + ".tmp", "w", encoding="utf-8") as f:
            json.dump(key, f, indent=1)
        os.replace(stamp + ".tmp", stamp)
        self.log(f"[{name}] done in {time.time() - start:.1f}s: {describe()}")
        return True
