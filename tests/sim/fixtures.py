"""Shared helpers: where the transcripts live (re-recorded from the real Asterisk 22 by
tests/asterisk/transcripts.py, same format and rig as shared/reference/ami/), the rig dialplan
they were recorded with, and a recording AudioSocket server (the worker's side, minimal)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialer.audiosocket.protocol import HANGUP_FRAME, Decoder, Kind, Message

REPO_ROOT = Path(__file__).resolve().parents[2]
TRANSCRIPTS = REPO_ROOT / "tests" / "asterisk" / "transcripts"
# The rig's Originate Timeout: 5 s past the Dial's 30 s, so the Dial ring timeout always decides
# the no-answer call (at 30 s both would race, and the winner depends on the machine's load).
RIG_ORIGINATE_TIMEOUT_MS = 35000


def reference_dir() -> Path:
    """The transcripts the simulator is checked against (``local/``, ``audiosocket/``, ``handover/``)."""
    if not (TRANSCRIPTS / "local").is_dir():
        pytest.fail(f"transcripts not found at {TRANSCRIPTS} (re-record: python -m tests.asterisk.transcripts)")
    return TRANSCRIPTS


def rig_dialplan(audiosocket_port: int = 9099) -> dict[str, list[tuple[str, str]]]:
    """The dialplan of the recording rig (the rig-* contexts of tests/asterisk/conf/pbx/extensions.conf)."""
    return {
        "rig-dial": [("Dial", "IAX2/carrier/${EXTEN},30"), ("Hangup", "${HANGUPCAUSE}")],
        "rig-hold": [("NoOp", "rig hold ${CHANNEL}"), ("Wait", "15"), ("Hangup", "")],
        "rig-analyze": [
            ("NoOp", "analyse ${UNIQUEID}"),
            ("AudioSocket", f"${{UNIQUEID}},127.0.0.1:{audiosocket_port}"),
            ("Hangup", ""),
        ],
    }


@dataclass
class Received:
    t: float  # seconds since accept
    kind: Kind | None  # None = socket closed by the peer
    length: int


@dataclass
class Connection:
    uuid: uuid.UUID | None = None
    log: list[Received] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class RecordingAudioSocketServer:
    """Logs every message like tests/asterisk/transcripts/audiosocket/*.frames.log; can hang up after N frames."""

    def __init__(self, *, hangup_after_frames: int | None = None, close_after_frames: int | None = None) -> None:
        self.hangup_after = hangup_after_frames
        self.close_after = close_after_frames
        self.connections: list[Connection] = []
        self.new_connection = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        conn = Connection()
        self.connections.append(conn)
        self.new_connection.set()
        decoder = Decoder()
        audio = 0
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    conn.log.append(Received(loop.time() - start, None, 0))
                    break
                for message in decoder.feed(data):
                    self._note(conn, message, loop.time() - start)
                    if message.kind is Kind.AUDIO:
                        audio += 1
                        writer.write(b"\x10\x00\x04" + b"\x00" * 4)  # audio back: must be ignored
                        if self.hangup_after is not None and audio == self.hangup_after:
                            writer.write(HANGUP_FRAME)
                        if self.close_after is not None and audio == self.close_after:
                            writer.close()
                            return
        except (ConnectionError, OSError):
            conn.log.append(Received(loop.time() - start, None, 0))
        finally:
            conn.done.set()
            writer.close()

    @staticmethod
    def _note(conn: Connection, message: Message, t: float) -> None:
        if message.kind is Kind.UUID:
            conn.uuid = message.uuid
        conn.log.append(Received(t, message.kind, len(message.payload)))


def read_frames_log(path: Path) -> list[Received]:
    out: list[Received] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        t = float(parts[0])
        if parts[1] == "closed":
            out.append(Received(t, None, 0))
        else:
            kind = Kind(int(parts[1].split("=")[1], 16))
            out.append(Received(t, kind, int(parts[2].split("=")[1])))
    return out
