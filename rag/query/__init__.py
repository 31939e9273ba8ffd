"""The read side: question -> verified Answer (pipeline.py), over an index opened by
rag/index/reader.py (the only module of rag/index/ this package imports)."""
