"""Evaluation (``rag eval``): eval sets (dataset.py), their run through the pipeline or
against a running service (runner.py), metrics (metrics.py), reports (reporting.py),
the XQuAD benchmark (xquad.py) and the naive baseline (naive.py)."""
