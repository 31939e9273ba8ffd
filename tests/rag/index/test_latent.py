from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.index.latent import LatentIndex, SentenceTerms, heaviest, pack, unpack


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


def test_sentence_terms_give_cosines_of_their_heaviest_terms(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    dim = 64
    sentences = [
        terms({int(t): float(rng.random()) + 0.01 for t in rng.choice(dim, 12, replace=False)})
        for _ in range(30)
    ]
    stored = SentenceTerms.build(sentences, dim, k=5)
    stored.save(tmp_path)
    loaded = SentenceTerms.load(tmp_path)
    assert loaded is not None and len(loaded) == 30
    query = terms({int(t): float(rng.random()) for t in rng.choice(dim, 20, replace=False)})
    q = np.zeros(dim)
    q[query[0]] = query[1]
    rows = [29, 0, 7, 7]
    expected = []
    for r in rows:
        ids, weights = heaviest(sentences[r], 5)
        assert sorted(weights.tolist()) == sorted(sentences[r][1].tolist())[-5:]
        s = np.zeros(dim)
        s[ids] = weights
        expected.append(s @ q / (np.linalg.norm(s) * np.linalg.norm(q)))
    np.testing.assert_allclose(loaded.cosine(query, rows), expected, rtol=1e-5)
    assert loaded.cosine(terms({}), rows).tolist() == [0.0] * 4
    assert SentenceTerms.load(tmp_path / "elsewhere") is None
