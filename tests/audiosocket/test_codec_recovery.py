"""The codec keeps whole frames that precede a broken one in the same read."""

from __future__ import annotations

import uuid

import pytest

from dialer.audiosocket.protocol import Decoder, Kind, encode_audio, encode_uuid
from dialer.errors import AudioSocketError


def test_good_frames_before_garbage_are_returned_then_error_held() -> None:
    d = Decoder()
    call = uuid.uuid4()
    data = encode_uuid(call) + encode_audio(b"\x01\x00" * 160) + b"\x42\x00\x01\x00"
    msgs = d.feed(data)
    assert [m.kind for m in msgs] == [Kind.UUID, Kind.AUDIO]
    assert msgs[0].uuid == call
    with pytest.raises(AudioSocketError, match="unknown message kind 0x42"):
        d.raise_if_failed()
    with pytest.raises(AudioSocketError, match="0x42"):
        d.feed(encode_audio(b"\x00\x00" * 160))


def test_garbage_alone_raises_at_once() -> None:
    with pytest.raises(AudioSocketError, match="unknown message kind"):
        Decoder().feed(b"\x99\x00\x00")


def test_truncated_frame_reported_on_close() -> None:
    d = Decoder()
    assert d.feed(encode_audio(b"\x00\x00" * 160)[:100]) == []
    with pytest.raises(AudioSocketError, match="inside a frame"):
        d.close()
