"""An ordered parallel map over worker processes that never reads far ahead, for corpora of
millions of lines (Pool.imap would pull every task into memory)."""

import collections
import multiprocessing


def parallel_map(fn, tasks, jobs, init, initargs):
    """fn over tasks in `jobs` forked processes (each set up by init(*initargs)), in order, with
    at most 4 tasks per process in flight. jobs <= 1 runs in this process."""
    if jobs <= 1:
        init(*initargs)
        yield from map(fn, tasks)
        return
    with multiprocessing.get_context("fork").Pool(jobs, init, initargs) as pool:
        pending = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(fn, (task,)))
            if len(pending) >= 4 * jobs:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def grouped(rows, n):
    """Iterable of tuples (one item per column) -> lists of columns of n rows each."""
    group = []
    for row in rows:
        group.append(row)
        if len(group) == n:
            yield [list(c) for c in zip(*group, strict=True)]
            group = []
    if group:
        yield [list(c) for c in zip(*group, strict=True)]
