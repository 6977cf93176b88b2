"""Load and fault benchmarks: the real `kadr api` and `kadr worker` processes against the
sandbox stand-ins, with Redis and PostgreSQL real, measured from outside.

`python -m bench` runs every workload and prints a results table with PASS/FAIL against the
targets in docs/benchmarks.md, plus a PNG chart; `--quick` runs small versions of the same
workloads in under two minutes (CI runs it). Only 127.0.0.1 is ever contacted, and every load
loop is bounded both in count and in time.
"""
