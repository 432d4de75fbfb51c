"""The built-in implementations, one module each, registered through the entry-point
group ``sublin_bench.impls`` in pyproject.toml."""
