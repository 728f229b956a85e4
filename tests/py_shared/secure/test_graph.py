"""Mask graphs: complete or a k-regular circulant over a shuffled ring; thresholds and suggested degrees."""

from __future__ import annotations

import random

import pytest

from py_shared.secure.graph import mask_graph, suggested_degree, threshold


def _shuffled(n: int, seed: int = 0) -> list[int]:
    order = [3 * i + 1 for i in range(n)]  # indices need not be 0..n-1
    random.Random(seed).shuffle(order)
    return order


@pytest.mark.parametrize(("n", "degree"), [(2, 0), (5, 0), (5, 4), (5, 9), (6, 5), (4, 3), (1, 0), (1, 2)])
def test_degree_zero_or_at_least_n_minus_one_is_the_complete_graph(n: int, degree: int) -> None:
    order = _shuffled(n)
    assert mask_graph(order, degree) == {i: frozenset(j for j in order if j != i) for i in order}


@pytest.mark.parametrize(("n", "degree"), [(4, 2), (5, 2), (6, 4), (10, 2), (10, 6), (33, 8), (100, 14)])
def test_a_sparse_graph_is_regular_symmetric_and_loop_free(n: int, degree: int) -> None:
    order = _shuffled(n, seed=n + degree)
    graph = mask_graph(order, degree)
    assert sorted(graph) == sorted(order)
    for i, neighbours in graph.items():
        assert len(neighbours) == degree and i not in neighbours and neighbours <= set(order)
        assert all(i in graph[j] for j in neighbours)


def test_neighbours_are_the_nearest_on_the_shuffled_ring() -> None:
    assert mask_graph([4, 2, 9, 7, 5], 2) == {4: {5, 2}, 2: {4, 9}, 9: {2, 7}, 7: {9, 5}, 5: {7, 4}}
    ring = mask_graph([0, 6, 1, 5, 2, 4, 3], 4)
    assert ring[0] == {4, 3, 6, 1} and ring[5] == {6, 1, 2, 4}


@pytest.mark.parametrize(("n", "degree"), [(5, 1), (6, 3), (10, 7), (100, 13)])
def test_an_odd_sparse_degree_is_refused(n: int, degree: int) -> None:
    with pytest.raises(ValueError, match=f"even degree, got {degree}"):
        mask_graph(_shuffled(n), degree)


@pytest.mark.parametrize(
    ("fraction", "degree", "expected"),
    [
        (2 / 3, 4, 4),  # a group of 5: ceil(10/3)
        (2 / 3, 2, 2),  # a group of 3: exactly 2, not 3 for a rounding error
        (2 / 3, 5, 4),
        (2 / 3, 8, 6),
        (0.51, 1, 2),  # never below 2
        (0.6, 0, 2),
        (1.0, 9, 10),
        (0.75, 19, 15),
    ],
)
def test_threshold(fraction: float, degree: int, expected: int) -> None:
    assert threshold(fraction, degree) == expected


def test_threshold_is_a_strict_majority_of_the_group() -> None:
    for degree in range(1, 200):
        for fraction in (0.51, 2 / 3, 0.75, 0.9):
            group, t = degree + 1, threshold(fraction, degree)
            assert 2 <= t <= group and 2 * t > group and t >= fraction * group - 1e-9
            assert t == 2 or t - 1 < fraction * group - 1e-9  # the smallest such


@pytest.mark.parametrize(
    ("n", "expected"), [(1, 2), (2, 2), (3, 4), (4, 4), (5, 6), (8, 6), (9, 8), (100, 14), (1000, 20), (1025, 22)]
)
def test_suggested_degree(n: int, expected: int) -> None:
    assert suggested_degree(n) == expected


def test_suggested_degree_is_even_and_grows_like_2_log2_n() -> None:
    degrees = [suggested_degree(n) for n in range(2, 5000)]
    assert all(d % 2 == 0 for d in degrees) and degrees == sorted(degrees)
    # (n - 1).bit_length() is ceil(log2 n), computed without floats
    assert degrees == [2 * (n - 1).bit_length() for n in range(2, 5000)]
