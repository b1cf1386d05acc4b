"""The one decoding thread. Every request's sentences wait in one queue; the thread takes all
that wait (first come, first served, up to serve_batch_tokens) and decodes them as one batch as
soon as the previous batch is done: continuous batching. Only when fewer sentences wait than
were in flight at once recently (waiting or decoding) does it wait for the rest: concurrent
clients send their next sentences a few milliseconds apart, as their answers reach them, and
should share one decoding run rather than queue behind each other's (8 clients would otherwise
settle into batches of 7 and 1, say, forever). It waits for requests the server is already
reading and tokenizing (they are about to join; `coming()` counts them) at most as long as the
last batch took to decode, and for requests not yet arrived at most serve_wait_ms, both counted
from when the thread was free and a sentence waited. A lone client's sentence waits for nobody.

Callers get a Job per sentence and block on `Job.result()`; a batch that fails fails its jobs,
and the thread goes on with the next batch.
"""

import collections
import contextlib
import threading
import time

from zero import log

RECENT = 8  # batches whose peak of sentences in flight says how many are worth waiting for


class Job:
    """One sentence in the queue: its tokens, how many hypotheses it wants, then its answer."""

    def __init__(self, tokens, n_best):
        self.tokens, self.n_best = tokens, n_best
        self.arrived = time.monotonic()
        self._done = threading.Event()
        self._hyps = self._error = None

    def finish(self, hyps=None, error=None):
        self._hyps, self._error = hyps, error
        self._done.set()

    def result(self):
        """Blocks until decoded: [(BPE'd text, score)] best first, or raises the batch's error."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._hyps


class Batcher:
    """decode(token lists, n_best, batch_tokens) -> their n-best lists, run by one thread."""

    def __init__(self, decode, batch_tokens, wait_ms):
        self._decode = decode
        self.batch_tokens, self.wait = batch_tokens, wait_ms / 1000.0
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._recent = collections.deque([1], maxlen=RECENT)
        self._closed = False
        self._coming = 0  # requests being read and tokenized, not yet submitted
        self._decoding = 0  # sentences in the batch being decoded
        self._peak = 0  # most sentences in flight (decoding and waiting) during this batch
        self._last_seconds = 0.0  # how long the last batch took to decode
        self._free_since = 0.0  # when the last batch was done
        # Decoded so far, and the most sentences one batch held (the log and the tests read them).
        self.batches = self.sentences = self.largest = 0
        self._thread = threading.Thread(target=self._run, name="decoder", daemon=True)
        self._thread.start()

    def submit(self, sentences):
        """[(tokens, n_best)] -> their Jobs, queued together (a request's sentences stay in
        order and, within the budget, in one batch)."""
        jobs = [Job(tokens, n_best) for tokens, n_best in sentences]
        with self._cond:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            self._queue.extend(jobs)
            self._peak = max(self._peak, self._decoding + len(self._queue))
            self._cond.notify()
        return jobs

    @contextlib.contextmanager
    def coming(self):
        """Around reading, checking, tokenizing and submitting a request: the decoding thread
        may wait for it."""
        with self._cond:
            self._coming += 1
        try:
            yield
        finally:
            with self._cond:
                self._coming -= 1
                self._cond.notify()

    def close(self):
        """Decode what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _fitting(self):
        """How many of the waiting jobs, in order, fit the token budget (at least one)."""
        longest = 0
        for count, job in enumerate(self._queue):
            longest = max(longest, len(job.tokens) + 1)
            if count and (count + 1) * longest > self.batch_tokens:
                return count
        return len(self._queue)

    def _take(self):
        """The next batch of jobs ([] once closed and drained)."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            expected = max(self._recent)
            start = max(self._queue[0].arrived, self._free_since) if self._queue else 0.0
            arriving, announced = start + self.wait, start + max(self.wait, self._last_seconds)
            while not self._closed and len(self._queue) < expected:
                if self._fitting() < len(self._queue):
                    break  # the budget is full already
                now = time.monotonic()
                deadline = announced if self._coming else arriving
                if now >= deadline:
                    break
                self._cond.wait(deadline - now)
            jobs = [self._queue.popleft() for _ in range(self._fitting() if self._queue else 0)]
            if jobs:
                waited = 1000 * (time.monotonic() - start)
                log.debug(f"batch of {len(jobs)} sentences ({waited:.0f} ms gathering them)")
            self._decoding = len(jobs)
            self._peak = len(jobs) + len(self._queue)
            return jobs

    def _run(self):
        while jobs := self._take():
            start = time.monotonic()
            try:
                found = self._decode(
                    [job.tokens for job in jobs], max(job.n_best for job in jobs), self.batch_tokens
                )
            except Exception as e:  # a failed batch fails its requests, not the server
                log.warning(f"decoding a batch of {len(jobs)} sentences failed: {e!r}")
                found = None
                for job in jobs:
                    job.finish(error=e)
            self._done(jobs, found, time.monotonic() - start)

    def _done(self, jobs, found, seconds):
        with self._cond:
            self._recent.append(self._peak)
            self._decoding, self._last_seconds = 0, seconds
            self._free_since = time.monotonic()
        if found is None:
            return
        for job, hyps in zip(jobs, found, strict=True):
            job.finish(hyps[: job.n_best])
        self.batches += 1
        self.sentences += len(jobs)
        self.largest = max(self.largest, len(jobs))
