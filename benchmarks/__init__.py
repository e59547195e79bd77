"""minigrad benchmarks: `python -m benchmarks.kernels` (see benchmarks/kernels.py)."""
