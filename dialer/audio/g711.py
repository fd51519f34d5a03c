"""G.711 μ-law and A-law, vectorised with numpy.

Both laws work on signed 16-bit linear samples. The decoder tables are the reconstruction values of
ITU-T G.711 (Tables 1a/2a), scaled to 16 bits the way ITU-T G.191 (the ITU software tools) does:
μ-law decodes to ±32124 at most, A-law to ±32256. The encoder follows the G.191 decision rule:
negative samples use the ones' complement before the magnitude is quantised, so that every code
owns the same interval on both sides of zero.

Encoding is one table look-up over all 65536 int16 values, decoding one look-up over 256 codes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]


def _ulaw_encode_all() -> UInt8Array:
    x = np.arange(-32768, 32768, dtype=np.int32)
    # 14-bit magnitude with the G.191 bias of 33 (= 132 / 4)
    mag = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    mag = np.minimum(mag, 0x1FFF)
    # segment = number of significant bits above bit 5 (1..8)
    seg = np.ones_like(mag)
    t = mag >> 6
    while np.any(t):
        seg += (t != 0).astype(np.int32)
        t >>= 1
    high = 8 - seg
    low = 0x0F - ((mag >> seg) & 0x0F)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    out: UInt8Array = code.astype(np.uint8)
    return out


def _ulaw_decode_all() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    inv = (~code) & 0xFF
    exponent = (inv >> 4) & 0x07
    mantissa = inv & 0x0F
    magnitude = ((mantissa << 3) + 132) << exponent
    value = magnitude - 132
    return np.where(code < 0x80, -value, value).astype(np.int16)


def _alaw_encode_all() -> UInt8Array:
    x = np.arange(-32768, 32768, dtype=np.int32)
    mag = np.where(x < 0, (~x) >> 4, x >> 4)  # 12-bit magnitude, ones' complement below zero
    # segment 0 holds 0..15; segment s ≥ 1 holds [16·2^(s-1), 16·2^s) with step 2^(s-1)
    bits = np.zeros_like(mag)  # index of the highest set bit
    t = mag >> 1
    while np.any(t):
        bits += (t != 0).astype(np.int32)
        t >>= 1
    seg = np.where(mag < 16, 0, bits - 3)
    mantissa = (mag >> np.maximum(seg - 1, 0)) & 0x0F
    code = (seg << 4) | mantissa
    code = np.where(x >= 0, code | 0x80, code)
    out: UInt8Array = (code ^ 0x55).astype(np.uint8)
    return out


def _alaw_decode_all() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    ix = (code ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    mantissa = (mantissa << 4) + 8
    mantissa = np.where(exponent > 1, mantissa << np.maximum(exponent - 1, 0), mantissa)
    return np.where(code > 127, mantissa, -mantissa).astype(np.int16)


ULAW_ENCODE_TABLE: UInt8Array = _ulaw_encode_all()
ULAW_DECODE_TABLE: Int16Array = _ulaw_decode_all()
ALAW_ENCODE_TABLE: UInt8Array = _alaw_encode_all()
ALAW_DECODE_TABLE: Int16Array = _alaw_decode_all()
for _table in (ULAW_ENCODE_TABLE, ULAW_DECODE_TABLE, ALAW_ENCODE_TABLE, ALAW_DECODE_TABLE):
    _table.setflags(write=False)


def _index(samples: npt.ArrayLike) -> npt.NDArray[np.intp]:
    arr = np.asarray(samples)
    if arr.dtype != np.int16:
        raise TypeError(f"G.711 encoding needs int16 samples, got {arr.dtype}")
    return arr.astype(np.intp) + 32768


def _codes(codes: npt.ArrayLike | bytes) -> UInt8Array:
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(codes, dtype=np.uint8)
    arr = np.asarray(codes)
    if arr.dtype != np.uint8:
        raise TypeError(f"G.711 decoding needs uint8 codes, got {arr.dtype}")
    return arr


def ulaw_encode(samples: npt.ArrayLike) -> UInt8Array:
    """int16 linear samples → μ-law codes."""
    return ULAW_ENCODE_TABLE[_index(samples)]


def ulaw_decode(codes: npt.ArrayLike | bytes) -> Int16Array:
    """μ-law codes (uint8 array or bytes) → int16 linear samples."""
    return ULAW_DECODE_TABLE[_codes(codes)]


def alaw_encode(samples: npt.ArrayLike) -> UInt8Array:
    """int16 linear samples → A-law codes (even bits inverted, as on the wire)."""
    return ALAW_ENCODE_TABLE[_index(samples)]


def alaw_decode(codes: npt.ArrayLike | bytes) -> Int16Array:
    """A-law codes (uint8 array or bytes) → int16 linear samples."""
    return ALAW_DECODE_TABLE[_codes(codes)]


def ulaw_roundtrip(samples: npt.ArrayLike) -> Int16Array:
    """What a μ-law trunk does to linear audio."""
    return ulaw_decode(ulaw_encode(samples))


def alaw_roundtrip(samples: npt.ArrayLike) -> Int16Array:
    """What an A-law trunk does to linear audio."""
    return alaw_decode(alaw_encode(samples))
