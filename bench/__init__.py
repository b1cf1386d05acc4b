"""Benchmarks and profiling of the toolkit (not tests; nothing in zero/ or rnns/ imports this).

    python -m bench                  lists the benchmarks
    python -m bench NAME --help      one benchmark's options

Measurements that need a process of their own run through bench/child.py.
"""
