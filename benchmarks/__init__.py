"""Benchmarks of espnet-cs against its peers, run as ``python -m benchmarks.<name>`` (:mod:`benchmarks.harness`)."""
