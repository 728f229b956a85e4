"""The fixed-point codec of secure sums: accuracy against numpy, clipping, the no-wrap bound, and mod-2^32 words."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tinygrad import Tensor

from py_shared.secure import fixed_point as fp
from py_shared.secure.precision import INT32_MAX, MIN_FRACTION_BITS, FixedPoint, fixed_point_for

# (clip, participants); every clip here is exact in float32, so float32(clip) is the clip itself
CODECS = [
    (1.0, 1),
    (1.0, 7),
    (0.75, 3),
    (5.0, 1000),
    (0.046875, 100),
    (1 + 3 * 2**-11, 20),
    (1 + 3 * 2**-11, 2**21),
    (3.0, 2**18),
]


def _encode_sum(vectors: list[np.ndarray], codec: FixedPoint, weights: list[float]) -> Tensor:
    total = fp.zeros(len(vectors[0]))
    for vector, weight in zip(vectors, weights, strict=True):
        total = fp.add(total, fp.encode(Tensor(vector), codec, weight)).realize()
    return total


def _within_bound(decoded: np.ndarray, reference: np.ndarray, codec: FixedPoint, count: int) -> None:
    tolerance = codec.max_error(count) + 2**-22 * np.abs(reference)
    assert np.all(np.abs(decoded - reference) <= tolerance), np.max(np.abs(decoded - reference) - tolerance)


@pytest.mark.parametrize(("clip", "count"), [(1.0, 1), (1.0, 7), (0.3, 20), (5.0, 12), (0.01, 3)])
def test_decoded_sum_matches_numpy(clip: float, count: int) -> None:
    rng = np.random.default_rng(count)
    codec = fixed_point_for(clip, count)
    vectors = [rng.uniform(-clip, clip, 513).astype(np.float32) for _ in range(count)]
    weights = [float(1 - rng.random()) for _ in range(count)]  # in (0, 1]
    decoded = fp.decode(_encode_sum(vectors, codec, weights), codec).numpy()
    # the codec weighs in float32, as the training pipeline would: the reference starts from the same products
    reference = np.sum([(np.float32(w) * v).astype(np.float64) for v, w in zip(vectors, weights, strict=True)], 0)
    assert decoded.dtype == np.float32
    _within_bound(decoded, reference, codec, count)


def test_values_beyond_the_clip_are_clipped() -> None:
    codec = fixed_point_for(0.5, 4)
    values = np.array([-1e30, -3.0, -0.5, -0.25, 0.0, 0.125, 0.5, 0.75, 7.0, np.inf, -np.inf], dtype=np.float32)
    vectors = [values, values[::-1].copy(), values, values]
    weights = [1.0, 0.5, 0.25, 1.0]
    decoded = fp.decode(_encode_sum(vectors, codec, weights), codec).numpy()
    reference = np.sum([w * np.clip(v.astype(np.float64), -0.5, 0.5) for v, w in zip(vectors, weights, strict=True)], 0)
    _within_bound(decoded, reference, codec, 4)
    assert decoded[0] == -0.5 * (1 + 0.5 + 0.25 + 1)  # dyadic values at a dyadic clip: exact


@pytest.mark.parametrize("weight", [0.0, -0.5, 1.5])
def test_a_weight_must_be_in_the_unit_interval(weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        fp.encode(Tensor([0.5]), fixed_point_for(1.0, 2), weight)


@pytest.mark.parametrize(("clip", "count"), CODECS)
def test_the_codec_is_the_finest_that_cannot_wrap(clip: float, count: int) -> None:
    codec = fixed_point_for(clip, count)
    assert codec.fraction_bits >= MIN_FRACTION_BITS and codec.max_magnitude == math.floor(clip * 2**codec.fraction_bits)
    assert count * codec.max_magnitude <= INT32_MAX
    assert count * math.floor(clip * 2 ** (codec.fraction_bits + 1)) > INT32_MAX


def test_random_codecs_are_the_finest_that_cannot_wrap() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2000):
        clip, count = float(10 ** rng.uniform(-4, 4)), int(rng.integers(1, 5000))
        try:
            codec = fixed_point_for(clip, count)
        except ValueError:
            assert count * math.floor(clip * 2**MIN_FRACTION_BITS) > INT32_MAX
            continue
        assert count * codec.max_magnitude <= INT32_MAX < count * math.floor(clip * 2 ** (codec.fraction_bits + 1))


def test_one_more_bit_is_taken_when_flooring_keeps_the_sum_in_range() -> None:
    clip = 715827882.5 / 2**30  # clip * 2^30 = (2^31 - 1) / 3 + 1/6: Q = 715827882 and 3Q = 2^31 - 2 fit
    assert fixed_point_for(clip, 3).fraction_bits == 30


@pytest.mark.parametrize(("clip", "count"), CODECS)
def test_a_full_sum_at_the_clip_reads_back_exactly(clip: float, count: int) -> None:
    codec = fixed_point_for(clip, count)
    for sign in (1, -1):
        one = fp.encode(Tensor(np.array([sign * clip, sign * 4 * clip], dtype=np.float32)), codec)
        # a single encode times n, summed in numpy's wrapping uint32: the same words n adds would give
        words = (one.numpy() * np.uint32(count)).astype(np.uint32)
        assert words.view(np.int32).tolist() == [sign * count * codec.max_magnitude] * 2
        decoded = fp.decode(Tensor(words), codec).numpy()
        assert decoded.tolist() == [np.float32(sign * count * codec.max_magnitude) / np.float32(codec.scale)] * 2


def test_each_value_is_within_half_a_unit_even_at_a_non_dyadic_clip() -> None:
    clip = 1 + 3 * 2**-11  # exact in float32; with f = 9, clip * 2^9 = 512.75 but Q = 512
    codec = fixed_point_for(clip, 2**21)
    top = codec.max_magnitude / codec.scale  # values are clipped to the largest representable one, Q / 2^f
    values = np.array([clip, top - 0.4 / codec.scale, -clip], dtype=np.float32)
    decoded = fp.decode(fp.encode(Tensor(values), codec), codec).numpy()
    clipped = np.clip(values, -top, top)
    assert np.all(np.abs(decoded - clipped) <= codec.max_error(1))


def test_too_few_fraction_bits_are_refused() -> None:
    assert fixed_point_for(1.0, 2**22).fraction_bits == MIN_FRACTION_BITS
    with pytest.raises(ValueError, match=r"a clip_value of 1 leaves 7 fractional bits in 32-bit sums"):
        fixed_point_for(1.0, 2**23)
    with pytest.raises(ValueError, match="leaves 1 fractional bits"):
        fixed_point_for(1e6, 1000)
    for clip, count in [(0.0, 10), (-1.0, 10), (math.nan, 10), (1.0, 0)]:
        with pytest.raises(ValueError, match="positive"):
            fixed_point_for(clip, count)


def test_add_and_subtract_wrap_like_uint32() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)
    a[:3], b[:3] = [2**32 - 1, 0, 2**31], [1, 1, 2**31]
    assert fp.add(Tensor(a), Tensor(b)).numpy().tolist() == (a + b).tolist()
    assert fp.subtract(Tensor(a), Tensor(b)).numpy().tolist() == (a - b).tolist()
    assert fp.subtract(fp.add(Tensor(a), Tensor(b)), Tensor(b)).numpy().tolist() == a.tolist()


def test_words_and_bytes_round_trip() -> None:
    data = bytes(range(256)) * 3 + b"\xff\xff\xff\x7f"
    vector = fp.words(data)
    assert vector.numpy().tolist() == np.frombuffer(data, "<u4").tolist()
    assert fp.to_bytes(vector) == data
    assert fp.to_bytes(fp.zeros(5)) == bytes(20)
    for length in (1, 2, 3, 5, 1023):
        with pytest.raises(ValueError, match=f"{length} bytes are not a whole number"):
            fp.words(bytes(length))
