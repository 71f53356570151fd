"""Benchmarks and their data: bulk seeders (`bench.seed`, `bench.profiles`), the
`portal bench` commands (`bench.cli`) and the benchmark scripts run by `make bench`."""
