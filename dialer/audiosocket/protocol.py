"""AudioSocket wire codec (res/res_audiosocket.c), pure: bytes in, messages out.

Each message is 1 byte kind + 2 bytes big-endian payload length + payload. Asterisk sends the
UUID first, then signed-linear audio (8 kHz, 16-bit LE, usually 320 bytes = 20 ms); it never
sends HANGUP itself, it just closes the socket.
"""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass

from dialer.errors import AudioSocketError

HEADER = struct.Struct(">BH")
SLIN8K_FRAME_BYTES = 320  # 20 ms at 8 kHz, 16-bit
# Asterisk frames are at most a few hundred bytes; anything far larger is a broken peer, and
# refusing it bounds the memory one connection can make us hold.
MAX_PAYLOAD_BYTES = 4096


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10  # slin 8 kHz
    AUDIO_12K = 0x11
    AUDIO_16K = 0x12
    AUDIO_24K = 0x13
    AUDIO_32K = 0x14
    AUDIO_44K = 0x15
    AUDIO_48K = 0x16
    AUDIO_96K = 0x17
    AUDIO_192K = 0x18
    ERROR = 0xFF


AUDIO_RATES_HZ: dict[Kind, int] = {
    Kind.AUDIO: 8000,
    Kind.AUDIO_12K: 12000,
    Kind.AUDIO_16K: 16000,
    Kind.AUDIO_24K: 24000,
    Kind.AUDIO_32K: 32000,
    Kind.AUDIO_44K: 44100,
    Kind.AUDIO_48K: 48000,
    Kind.AUDIO_96K: 96000,
    Kind.AUDIO_192K: 192000,
}


@dataclass(frozen=True, slots=True)
class Message:
    kind: Kind
    payload: bytes

    @property
    def uuid(self) -> uuid.UUID:
        if self.kind is not Kind.UUID or len(self.payload) != 16:
            raise AudioSocketError(f"not a UUID message: kind {self.kind.name}, {len(self.payload)} bytes")
        return uuid.UUID(bytes=self.payload)


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise AudioSocketError(f"payload of {len(payload)} bytes does not fit a frame")
    return HEADER.pack(kind, len(payload)) + payload


def encode_uuid(value: uuid.UUID) -> bytes:
    return encode(Kind.UUID, value.bytes)


def encode_audio(pcm: bytes) -> bytes:
    return encode(Kind.AUDIO, pcm)


HANGUP_FRAME = encode(Kind.HANGUP)


class Decoder:
    """Incremental decoder: feed() whatever the socket gave, get whole messages back.

    An unknown kind or an oversized length is an AudioSocketError; the caller closes that one
    connection and logs the reason. Whole messages that came before the broken one in the same
    read are still returned (no good audio is lost): the error is then held and raised by
    :meth:`raise_if_failed` and by every later call. A stream that ends mid-message is reported by
    ``close()``.
    """

    def __init__(self, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_payload_bytes
        self._error: AudioSocketError | None = None

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def feed(self, data: bytes) -> list[Message]:
        self.raise_if_failed()
        self._buf += data
        out: list[Message] = []
        try:
            self._parse(out)
        except AudioSocketError as exc:
            self._error = exc
            if not out:
                raise
        return out

    def _parse(self, out: list[Message]) -> None:
        while len(self._buf) >= HEADER.size:
            raw_kind, length = HEADER.unpack_from(self._buf)
            try:
                kind = Kind(raw_kind)
            except ValueError:
                raise AudioSocketError(f"unknown message kind 0x{raw_kind:02x}") from None
            if length > self._max:
                raise AudioSocketError(f"{kind.name} frame of {length} bytes exceeds {self._max}")
            if kind is Kind.UUID and length != 16:
                raise AudioSocketError(f"UUID frame of {length} bytes, expected 16")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            out.append(Message(kind, bytes(self._buf[HEADER.size : end])))
            del self._buf[:end]

    def close(self) -> None:
        """Call at end of stream: leftover bytes mean a truncated frame."""
        self.raise_if_failed()
        if self._buf:
            raise AudioSocketError(f"stream ended inside a frame ({len(self._buf)} bytes left)")
