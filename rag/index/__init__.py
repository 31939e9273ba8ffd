"""The write side and the on-disk format: corpus -> passages -> vectors, BM25 and
latent terms -> one published index version (build.py); reader.py opens a version for
the read side (rag/query/ imports nothing else of this package)."""
