"""Benchmarks for DESIGN §13: start the real server, load it over loopback, print the figures.

Every scenario is measured next to a bare FastAPI baseline in the same run, so the printed ratio
stays meaningful on shared machines whose absolute speed drifts. Run `python -m bench.run --help`.
"""
