"""Cosine similarity and the chunked nearest-neighbour search."""

import numpy as np
import pytest

from gahb_bench.similarity import cosine_similarity, nearest_neighbours


def test_cosine_known_values():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    b = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), [0.0, 1.0, 8 / np.sqrt(8 * 10)])
    # Centred: each vector minus its mean; a constant vector has similarity 0 with anything.
    np.testing.assert_allclose(cosine_similarity(a, b, centred=True), [-1.0, 0.0, 0.0])
    x = np.random.default_rng(0).random((5, 1, 4, 4))
    np.testing.assert_allclose(cosine_similarity(x, 3.0 * x), 1.0)
    np.testing.assert_allclose(cosine_similarity(x, x + 7.0, centred=True), 1.0)


@pytest.mark.parametrize("measure,centred", [("cosine", False), ("cosine", True), ("l2", False), ("l2", True)])
def test_search_agrees_with_brute_force_and_bounds_its_blocks(measure, centred):
    rng = np.random.default_rng(1)
    refs = rng.random((103, 1, 3, 3))
    queries = rng.random((17, 1, 3, 3))
    q, r = queries.reshape(17, -1), refs.reshape(103, -1)
    if centred:
        q, r = q - q.mean(1, keepdims=True), r - r.mean(1, keepdims=True)
    if measure == "cosine":
        full = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (r / np.linalg.norm(r, axis=1, keepdims=True)).T
        order = np.argsort(-full, axis=1, kind="stable")[:, :3]
    else:
        full = ((q[:, None] - r[None]) ** 2).sum(-1)
        order = np.argsort(full, axis=1, kind="stable")[:, :3]
    found = nearest_neighbours(queries, refs, k=3, measure=measure, centred=centred, chunk=10)
    np.testing.assert_array_equal(found.index, order)
    np.testing.assert_allclose(found.value, np.take_along_axis(full, order, axis=1), atol=1e-12)
    assert found.largest_block <= 17 * 10  # never the whole 17 × 103 matrix


def test_search_bad_arguments():
    x = np.zeros((2, 4))
    with pytest.raises(ValueError, match="measure"):
        nearest_neighbours(x, x, measure="l1")
    with pytest.raises(ValueError, match="exceeds"):
        nearest_neighbours(x, x, k=3)
