"""Benchmarks of lth_prune: ``pytest benchmarks`` (see ``benchmarks/README.md``).

A package so that the test modules import their helpers as ``benchmarks._timing`` and the
summary runs as ``python -m benchmarks.summary RESULTS.json`` from the repository root.
"""
