"""cytodask benchmarks: the project against the reference tools on the same data, in one run."""
