"""Citation-first, multilingual question answering over a folder of articles."""

import os

# NumPy's OpenBLAS threads spin after each product and starve the embedding engine's
# OpenMP threads: with two of each on two cores a question took 110 ms to embed
# instead of 12 (measured on the XQuAD Arabic index, whose sentence matrix is large
# enough for OpenBLAS to go parallel). The engine's products are small; one BLAS
# thread is enough. Set before NumPy loads; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
