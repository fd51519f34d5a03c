"""G.711 against the ITU reconstruction values and an independent implementation (audioop)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dialer.audio import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # Python ≤ 3.12 only; an independent C implementation (Sun's g711.c)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def test_ulaw_decoder_matches_itu_reconstruction_values() -> None:
    # G.711 Table 2a in 14-bit units ×4 (G.191 scaling): code 0x80 is the top positive level 8031
    assert g711.ulaw_decode(bytes([0x80, 0x00, 0xFF, 0x7F])).tolist() == [32124, -32124, 0, 0]
    # first segment steps by 2 (×4 = 8), last segment by 256 (×4 = 1024)
    positive = g711.ulaw_decode(np.arange(0xFF, 0x7F, -1, dtype=np.uint8)).astype(int)
    steps = np.diff(positive)
    assert set(steps[:15]) == {8} and set(steps[-15:]) == {1024}


def test_alaw_decoder_matches_itu_reconstruction_values() -> None:
    # A-law: 0xD5 is +1 (×8 → 8 in 16-bit), 0xAA the top level 4032 (×8 → 32256)
    assert g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]
    positive = np.sort(g711.alaw_decode(ALL_CODES[ALL_CODES >= 0x80]).astype(int))
    steps = np.diff(positive)
    assert set(steps[:31]) == {16} and set(steps[-15:]) == {1024}


def test_decoders_equal_audioop() -> None:
    codes = bytes(range(256))
    assert np.array_equal(g711.ulaw_decode(codes), np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2"))
    assert np.array_equal(g711.alaw_decode(codes), np.frombuffer(audioop.alaw2lin(codes, 2), "<i2"))


def test_alaw_encoder_equals_audioop_everywhere() -> None:
    ours = g711.alaw_encode(ALL_INT16)
    ref = np.frombuffer(audioop.lin2alaw(ALL_INT16.tobytes(), 2), np.uint8)
    assert np.array_equal(ours, ref)


def test_ulaw_encoder_equals_audioop_except_negative_decision_points() -> None:
    # audioop negates negative samples (-x), G.191 takes the ones' complement (~x): they differ
    # exactly on the lowest value of each negative interval, never on positive samples
    ours = g711.ulaw_encode(ALL_INT16)
    ref = np.frombuffer(audioop.lin2ulaw(ALL_INT16.tobytes(), 2), np.uint8)
    differ = ALL_INT16[ours != ref]
    assert len(differ) > 0 and (differ < 0).all()
    assert (np.abs(ours[ours != ref].astype(int) - ref[ours != ref].astype(int)) == 1).all()


@pytest.mark.parametrize(
    ("encode", "decode"), [(g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)]
)
def test_encode_is_monotonic_and_nearest(encode, decode) -> None:  # type: ignore[no-untyped-def]
    rec = decode(encode(ALL_INT16)).astype(int)
    assert (np.diff(rec) >= 0).all()  # quantiser is monotonic
    levels = np.unique(decode(ALL_CODES).astype(int))
    # each sample maps to one of the two reconstruction levels around it
    idx = np.searchsorted(levels, ALL_INT16.astype(int))
    lo = levels[np.clip(idx - 1, 0, len(levels) - 1)]
    hi = levels[np.clip(idx, 0, len(levels) - 1)]
    assert ((rec == lo) | (rec == hi) | (rec == levels[0]) | (rec == levels[-1])).all()


def test_codes_survive_decode_encode() -> None:
    assert np.array_equal(g711.alaw_encode(g711.alaw_decode(ALL_CODES)), ALL_CODES)
    back = g711.ulaw_encode(g711.ulaw_decode(ALL_CODES))
    # 0x7F is μ-law's "negative zero": it decodes to 0 and re-encodes as positive zero 0xFF
    assert np.array_equal(back[ALL_CODES != 0x7F], ALL_CODES[ALL_CODES != 0x7F])
    assert back[0x7F] == 0xFF


def test_wrong_dtypes_are_refused() -> None:
    with pytest.raises(TypeError, match="int16"):
        g711.ulaw_encode(np.zeros(4, dtype=np.float64))
    with pytest.raises(TypeError, match="uint8"):
        g711.alaw_decode(np.zeros(4, dtype=np.int16))
