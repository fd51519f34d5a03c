"""Item 4 of issue 10 on the real Asterisk: AudioSocket() ends the analysis leg (and, through the
contract's dialplan, the whole call) when neither side sent a frame for 2 s. A carrier that signals
progress and then plays nothing for 5 s shows it; the worker's keepalive holds the call."""

from __future__ import annotations

import asyncio
import uuid

from dialer.ami.protocol import AmiMessage
from dialer.audiosocket.server import AudioSocketServer

from .network import Pbx
from .recorder import Recorder
from .scenarios import number_of
from .transcripts import contract_originate

GAP = number_of("early_media_gap")  # Progress, 5 s of nothing, «абонент временно недоступен», cause 20


class Sink:
    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.ended = asyncio.Event()
        self.reason = ""
        self._loop = asyncio.get_running_loop()

    def on_frame(self, pcm: bytes, frame_index: int) -> None:
        self.frames.append((self._loop.time(), pcm))

    def on_dtmf(self, digit: str) -> None:
        pass

    def on_end(self, reason: str) -> None:
        self.reason = reason
        self.ended.set()


def _hangup_of(channel_id: str, trunk: bool):  # type: ignore[no-untyped-def]
    def match(m: AmiMessage) -> bool:
        if m.event != "Hangup" or m.get("Linkedid") != channel_id:
            return False
        return (m.get("Channel") or "").startswith("IAX2/") if trunk else m.get("Uniqueid") == channel_id

    return match


async def _call(pbx: Pbx, audiosocket: str, channel: uuid.UUID | None = None) -> tuple[Recorder, str, float]:
    """Originate the gap scenario as the worker would; returns when ;1 is Up (progress)."""
    rec = await Recorder.connect(pbx.ami_port, "kit", pbx.instance.kit_secret)
    channel_id = str(channel or uuid.uuid4())
    reply = await rec.action("Originate", *contract_originate(GAP, channel_id, audiosocket))
    assert reply.response == "Success", reply.to_dict()
    await rec.wait_for(
        lambda m: m.event == "Newstate" and m.get("Uniqueid") == channel_id and m.get("ChannelState") == "6", 15
    )
    return rec, channel_id, asyncio.get_running_loop().time()


async def test_without_keepalive_real_asterisk_drops_quiet_early_media(pbx: Pbx) -> None:
    """The reason for the keepalive: an AudioSocket peer that never writes loses the call after 2 s."""
    from tests.sim.fixtures import RecordingAudioSocketServer

    server = RecordingAudioSocketServer()  # writes only in reply to audio: nothing in the gap
    port = await server.start()
    rec, channel_id, up_at = await _call(pbx, f"127.0.0.1:{port}")
    try:
        await rec.wait_for(_hangup_of(channel_id, trunk=False), 15)
        gone_after_s = asyncio.get_running_loop().time() - up_at
        trunk = await rec.wait_for(_hangup_of(channel_id, trunk=True), 15)
        conn = server.connections[0]
        await asyncio.wait_for(conn.done.wait(), 5)
    finally:
        await rec.close()
        await server.stop()
    assert 1.5 <= gone_after_s < 4.5, f"the call ended {gone_after_s:.2f} s after progress"
    assert conn.log[-1].kind is None  # Asterisk closed the socket
    assert trunk["Cause"] != "20"  # ended from our side, before the network's announcement and cause


async def test_keepalive_holds_an_early_media_call_through_5_s_without_media(pbx: Pbx) -> None:
    sink = Sink()
    channel = uuid.uuid4()
    server = AudioSocketServer(lambda uid: sink if uid == channel else None, host="127.0.0.1", port=0)
    port = await server.start()
    try:
        rec, channel_id, up_at = await _call(pbx, f"127.0.0.1:{port}", channel)
        try:
            trunk = await rec.wait_for(_hangup_of(channel_id, trunk=True), 30)
            await asyncio.wait_for(sink.ended.wait(), 10)
        finally:
            await rec.close()
    finally:
        await server.close()
    assert trunk["Cause"] == "20", "the network ended the call after its announcement"
    assert sink.reason == "closed by asterisk"
    speech = [t for t, pcm in sink.frames if any(pcm)]
    assert speech, "the announcement after the gap reached the worker"
    assert speech[0] - up_at >= 4.5, "the carrier really sent nothing for 5 s"
    assert all(not any(pcm) for t, pcm in sink.frames if t < speech[0])
    assert server.keepalives_sent >= 7  # ~5 s of quiet, one every 0.5 s
