from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.latent import LatentIndex, pack, unpack


def terms(pairs: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(list(pairs), np.int32), np.array(list(pairs.values()), np.float32)


def test_scores_are_dot_products_of_term_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    dim = 50
    passages = [
        terms({int(t): float(rng.random()) for t in rng.choice(dim, 8, replace=False)})
        for _ in range(40)
    ]
    index = LatentIndex.build([f"p{i}" for i in range(40)], passages, dim)
    query = terms({3: 0.5, 7: 1.0, 49: 0.25})
    dense = np.zeros((40, dim), np.float32)
    for i, (ids, weights) in enumerate(passages):
        dense[i, ids] = weights
    expected = dense[:, query[0]] @ query[1]
    np.testing.assert_allclose(index.scores(query), expected, rtol=1e-6)
    index.save(tmp_path)
    loaded = LatentIndex.load(tmp_path)
    ranked = loaded.search(query, 5)
    assert [pid for pid, _ in ranked] == [f"p{i}" for i in np.argsort(-expected, kind="stable")[:5]]
    assert all(score > 0 for _, score in ranked)
    assert loaded.search(terms({}), 5) == []  # no shared term, no result


def test_terms_survive_the_cache_blob_and_bad_ids_are_refused() -> None:
    original = terms({1: 0.5, 9000: 2.0})
    ids, weights = unpack(pack(original))
    assert ids.tolist() == [1, 9000] and weights.tolist() == [0.5, 2.0]
    with pytest.raises(ValueError, match=r"latent term ids must be in \[0, 100\)"):
        LatentIndex.build(["a"], [original], 100)
    with pytest.raises(ValueError, match="2 passage ids for 1 latent term lists"):
        LatentIndex.build(["a", "b"], [original], 10_000)
