"""Property/fuzz tests (hypothesis): AMI streams, AudioSocket streams and CSV files, well-formed and
not, chopped at any byte — 0 crashes. A crash is any exception other than the one the component
declares for bad input (AudioSocketError, InputError), and a well-formed input must come through
intact.

Example counts (CI): AMI 4,400 streams (+ 300 channel listings), AudioSocket 3,400 streams (+ 150
through a real server), CSV 2,400 files — 10,650 inputs, each holding many messages, frames or rows
(about 80,000 AMI messages and 90,000 AudioSocket frames).
``DIALER_FUZZ_SCALE=10`` multiplies every count (bench/bench_faults.py --fuzz-scale).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.ami.client import AmiEvent
from dialer.ami.pool import live_attempts
from dialer.ami.protocol import Parser, serialize
from dialer.ami.signals import Correlator
from dialer.audiosocket.protocol import MAX_PAYLOAD_BYTES, Decoder, Kind, Message, encode
from dialer.audiosocket.server import AudioSink, AudioSocketServer
from dialer.csvio import CsvContact, LineTally, RowError, iter_contacts, iter_exclusions, open_text
from dialer.domain.model import ExclusionKind
from dialer.domain.rules import RulesTable
from dialer.errors import AudioSocketError, InputError
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.ingest import ContactPreparer

from .lab import CONFIG

SCALE = max(1, int(os.environ.get("DIALER_FUZZ_SCALE", "1")))


def fuzz(n: int) -> settings:
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        derandomize=SCALE == 1,  # CI: the same inputs every run; a deeper run explores
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def chopped(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at the given positions (as a socket may deliver it)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


# ---- AMI -------------------------------------------------------------------------------------------

ATTEMPTS = [uuid.UUID(int=i + 1) for i in range(4)]


def _plain_key(k: str) -> bool:
    return ":" not in k and k.strip() == k and "\n" not in k and "\r" not in k


EVENTS = [
    "Newchannel",
    "Newstate",
    "Hangup",
    "HangupRequest",
    "SoftHangupRequest",
    "DialBegin",
    "DialEnd",
    "DialState",
    "OriginateResponse",
    "LocalBridge",
    "Newexten",
    "VarSet",
    "BridgeEnter",
    "BridgeLeave",
    "AgentConnect",
    "CoreShowChannel",
    "FullyBooted",
]
uid_st = st.one_of(
    st.sampled_from([str(a) for a in ATTEMPTS] + [f"{a};2" for a in ATTEMPTS] + [f"{a};3" for a in ATTEMPTS]),
    st.sampled_from(["1795418600.2", "", "<null>", "not-a-uuid", str(uuid.UUID(int=99))]),
    st.text(max_size=12),
)
value_st = st.one_of(
    st.integers(-5, 200).map(str),
    st.sampled_from(["Up", "Ringing", "ANSWER", "BUSY", "NOANSWER", "Success", "Failure", "", "6", "4"]),
    st.text(max_size=10),
)
header_st = st.one_of(
    st.tuples(st.sampled_from(["Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid"]), uid_st),
    st.tuples(
        st.sampled_from(
            [
                "Cause",
                "ChannelState",
                "ChannelStateDesc",
                "DialStatus",
                "Reason",
                "Response",
                "Channel",
                "Context",
                "Application",
                "ActionID",
                "Variable",
            ]
        ),
        value_st,
    ),
    st.tuples(st.text(min_size=1, max_size=8).filter(_plain_key), st.text(max_size=8)),
)
message_st = st.builds(
    lambda name, headers: (("Event", name), *headers), st.sampled_from(EVENTS), st.lists(header_st, max_size=6)
)
garbage_st = st.one_of(st.binary(max_size=60), st.text(max_size=30).map(lambda t: t.encode("utf-8", "replace")))


def _clean(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Headers as they survive the wire: no line breaks inside, values without leading blanks."""
    return tuple((k, v.replace("\r", " ").replace("\n", " ").lstrip(" \t")) for k, v in headers)


@fuzz(400)
@given(
    messages=st.lists(message_st, max_size=8),
    garbage=st.lists(garbage_st, max_size=3),
    cuts=st.lists(st.integers(0, 4_000), max_size=6),
    banner=st.booleans(),
)
def test_ami_streams_never_crash_and_good_messages_come_through(
    messages: list[tuple[tuple[str, str], ...]], garbage: list[bytes], cuts: list[int], banner: bool
) -> None:
    clean = [_clean(m) for m in messages]
    good = b"".join(serialize(m) for m in clean)
    stream = (b"Asterisk Call Manager/13.0.0\r\n" if banner else b"") + good
    # well-formed: every message comes back exactly, however the stream is chopped
    parser = Parser(expect_banner=True)
    got = [m for chunk in chopped(stream, cuts) for m in parser.feed(chunk)]
    assert [m.headers for m in got] == [m for m in clean if m]
    # with garbage anywhere: never an exception, and everything parsed goes to the correlator and
    # the worker's other AMI consumers without one either
    noisy = b"".join(g + serialize(m) for g, m in zip([*garbage, *([b""] * len(clean))], clean, strict=False))
    noisy += b"".join(garbage)
    parser = Parser(expect_banner=banner)
    correlator = Correlator()
    for a in ATTEMPTS[:2]:
        correlator.track(a, 0.0)
    t = 0.0
    for chunk in chopped(noisy, cuts):
        for msg in parser.feed(chunk):
            t += 0.01
            headers = msg.to_dict()
            correlator.feed(headers, t)
            AmiEvent("sim", headers).get("Uniqueid")
    live_attempts([m.to_dict() for m in parser.feed(b"\r\n\r\n")])
    for a in ATTEMPTS[:2]:
        correlator.finish(a, t + 1)


@fuzz(300)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["Uniqueid", "Linkedid", "Channel", "uniqueid", "x"]), uid_st, max_size=4),
        max_size=10,
    )
)
def test_core_show_channels_listings_never_crash(channels: list[dict[str, str]]) -> None:
    found = live_attempts(channels)
    assert found <= {uuid.UUID(v.split(";")[0]) for ch in channels for v in ch.values() if _is_uuidish(v.split(";")[0])}


def _is_uuidish(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


# ---- AudioSocket -------------------------------------------------------------------------------------

frame_st = st.one_of(
    st.builds(lambda p: (Kind.AUDIO, p), st.binary(min_size=0, max_size=320)),
    st.builds(lambda p: (Kind.UUID, p), st.binary(min_size=16, max_size=16)),
    st.builds(lambda p: (Kind.DTMF, p), st.binary(min_size=1, max_size=1)),
    st.builds(lambda p: (Kind.ERROR, p), st.binary(max_size=4)),
    st.builds(lambda k, p: (k, p), st.sampled_from(list(Kind)), st.binary(max_size=64)).filter(
        lambda kp: kp[0] is not Kind.UUID
    ),
)
broken_st = st.one_of(
    st.binary(min_size=1, max_size=64),
    st.builds(lambda k, n: bytes([k]) + n.to_bytes(2, "big"), st.integers(0, 255), st.integers(0, 0xFFFF)),
)


@fuzz(400)
@given(
    frames=st.lists(frame_st, max_size=12),
    broken=st.one_of(st.none(), broken_st),
    cuts=st.lists(st.integers(0, 5_000), max_size=6),
)
def test_audiosocket_streams_never_crash_and_good_frames_come_through(
    frames: list[tuple[Kind, bytes]], broken: bytes | None, cuts: list[int]
) -> None:
    good = b"".join(encode(k, p) for k, p in frames)
    decoder = Decoder()
    got: list[Message] = []
    for chunk in chopped(good, cuts):
        got += decoder.feed(chunk)
    decoder.close()
    assert [(m.kind, m.payload) for m in got] == frames
    # a broken tail: only AudioSocketError, and every frame before it still delivered
    if broken is None:
        return
    decoder = Decoder()
    got = []
    failed = False
    for chunk in chopped(good + broken + good, cuts):
        try:
            got += decoder.feed(chunk)
        except AudioSocketError:
            failed = True
            break
    try:
        decoder.close()
    except AudioSocketError:
        failed = True
    assert [(m.kind, m.payload) for m in got][: len(frames)] == frames or failed
    for m in got:
        assert len(m.payload) <= MAX_PAYLOAD_BYTES


class _Sink(AudioSink):
    def __init__(self) -> None:
        self.frames = 0

    def on_frame(self, pcm: bytes, frame_index: int) -> None:
        self.frames += 1

    def on_dtmf(self, digit: str) -> None:
        pass

    def on_end(self, reason: str) -> None:
        pass


@fuzz(150)
@given(junk=st.lists(broken_st, min_size=1, max_size=3), cuts=st.lists(st.integers(0, 500), max_size=4))
def test_the_audiosocket_server_survives_any_bytes(junk: list[bytes], cuts: list[int]) -> None:
    """Random bytes on one connection close that connection only; a good call after it works."""
    call = uuid.uuid4()

    async def scenario() -> int:
        sink = _Sink()
        server = AudioSocketServer(lambda uid: sink if uid == call else None, uuid_timeout_s=0.5)
        await server.start()
        try:
            _, w = await asyncio.open_connection("127.0.0.1", server.port)
            for chunk in chopped(b"".join(junk), cuts):
                w.write(chunk)
            await w.drain()
            w.close()
            _, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(encode(Kind.UUID, call.bytes) + encode(Kind.AUDIO, b"\x00" * 320) * 3)
            await w.drain()
            w.close()
            for _ in range(200):
                if sink.frames >= 3:
                    break
                await asyncio.sleep(0.005)
            return sink.frames
        finally:
            await server.close()

    assert asyncio.run(scenario()) == 3


# ---- CSV files ---------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
cell_st = st.one_of(
    st.sampled_from(["", "8 916 123-45-67", "+7 (495) 123-45-67 доб. 12", "юр. лицо", "физ", "ООО «Ромашка»"]),
    st.sampled_from(['"', '""', ";", ",", "\n", "\r\n", '"a;b"', "\x00", "\ufeff", "ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!"]),
    st.text(max_size=10),
)
row_st = st.lists(cell_st, min_size=0, max_size=7)
header_st_csv = st.sampled_from(
    [
        ["ID", "Телефон", "Тип владельца", "Владелец", "Отметки", "Комментарий"],
        ["id", "phone"],
        ["number", "kind", "reason"],
        ["Телефон", "ID", "Комментарий"],
        [],
    ]
)
PREPARER = ContactPreparer(
    CampaignSettings("fuzz"),
    RulesTable.load(CONFIG / "rules.yaml"),
    frozenset({"+74957304487"}),
)


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str, encoding: str, raw: bytes) -> None:
    text = "\r\n".join(delimiter.join(r) for r in [header, *rows]) + "\r\n"
    data = text.encode(encoding, errors="replace") if encoding != "raw" else text.encode("utf-8", "replace")
    path.write_bytes(data + raw)


@fuzz(400)
@given(
    header=header_st_csv,
    rows=st.lists(row_st, max_size=10),
    delimiter=st.sampled_from([";", ","]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1251", "utf-16", "utf-16-le", "raw"]),
    raw=st.one_of(st.just(b""), st.binary(max_size=40)),
)
def test_csv_files_never_crash_and_every_line_is_accounted_for(
    header: list[str], rows: list[list[str]], delimiter: str, encoding: str, raw: bytes
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.csv"
        _write(path, header, rows, delimiter, encoding, raw)
        try:
            opened = open_text(path)
        except InputError:
            return  # refused whole, one line: fine
        for kind in ("contacts", "exclusions"):
            tally = LineTally()
            try:
                items = (
                    list(iter_contacts(opened.text, str(path), tally))
                    if kind == "contacts"
                    else list(iter_exclusions(opened.text, str(path), ExclusionKind.CALLS, tally))
                )
            except InputError:
                items = None  # a header problem: one line
            if items is not None:
                assert opened.scan is not None
                assert tally.header_lines + tally.blank_lines + tally.record_lines == opened.scan.lines
                assert len(items) == tally.records
                for item in items:
                    assert isinstance(item, RowError) or item.line >= 1
                    if isinstance(item, CsvContact):
                        PREPARER.prepare(item, NOW)  # numbers, zones, pre-dial rules: no crash
            opened.close()
            opened = open_text(path)
        opened.close()


# ---- bulk: a seed from hypothesis, the input from a fast generator (thousands per second) ------------
#
# Hypothesis builds the inputs above field by field (and shrinks a failure to its smallest form) at
# about 13 ms an input; the bulk tests below draw only a seed and build much larger inputs from it
# with random.Random, so the counts fit in CI time. A failure names its seed.

_AMI_KEYS = ["Uniqueid", "Linkedid", "DestUniqueid", "Cause", "ChannelState", "ChannelStateDesc", "DialStatus"]
_AMI_KEYS += ["Reason", "Response", "Channel", "Context", "Application", "ActionID", "Variable", "Privilege"]
_AMI_VALUES = [str(a) for a in ATTEMPTS] + [f"{a};2" for a in ATTEMPTS] + ["1795418600.2", "", "<null>", "Up"]
_AMI_VALUES += ["17", "16", "0", "-1", "ANSWER", "BUSY", "Failure", "Success", "Local/79990000001@dialer-dial/n;1"]


def _rand_text(rng: random.Random, n: int) -> str:
    alphabet = "abcАБВ 0123456789:;,./\t\u00e9\u2028\ufeff"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n + 1)))


def _ami_stream(rng: random.Random) -> tuple[bytes, list[tuple[tuple[str, str], ...]]]:
    good: list[tuple[tuple[str, str], ...]] = []
    out = bytearray(b"Asterisk Call Manager/13.0.0\r\n" if rng.random() < 0.5 else b"")
    for _ in range(rng.randrange(40)):
        headers = [("Event", rng.choice(EVENTS))]
        for _ in range(rng.randrange(10)):
            value = rng.choice(_AMI_VALUES) if rng.random() < 0.7 else _rand_text(rng, 12)
            headers.append((rng.choice(_AMI_KEYS), value))
        msg = _clean(tuple(headers))
        good.append(msg)
        out += serialize(msg)
        r = rng.random()
        if r < 0.05:
            out += rng.randbytes(rng.randrange(80))
        elif r < 0.1:
            out += b"no colon here\r\n" if rng.random() < 0.5 else b"\r\n\r\n"
    return bytes(out), good


@fuzz(4000)
@given(seed=st.integers(0, 2**32))
def test_bulk_ami_streams(seed: int) -> None:
    rng = random.Random(seed)
    stream, _ = _ami_stream(rng)
    parser = Parser(expect_banner=True)
    correlator = Correlator()
    for a in ATTEMPTS:
        correlator.track(a, 0.0)
    cuts = [rng.randrange(len(stream) + 1) for _ in range(rng.randrange(8))]
    t = 0.0
    for chunk in chopped(stream, cuts):
        for msg in parser.feed(chunk):
            t += 0.01
            correlator.feed(msg.to_dict(), t)
    for a in ATTEMPTS:
        correlator.finish(a, t + 1)


def _audiosocket_stream(rng: random.Random) -> tuple[bytes, int]:
    out = bytearray(encode(Kind.UUID, rng.randbytes(16)))
    frames = 1
    for _ in range(rng.randrange(60)):
        kind = rng.choice([Kind.AUDIO] * 8 + [Kind.DTMF, Kind.ERROR, Kind.HANGUP, Kind.AUDIO_16K])
        size = 320 if kind is Kind.AUDIO and rng.random() < 0.8 else rng.randrange(400)
        out += encode(kind, rng.randbytes(size))
        frames += 1
    return bytes(out), frames


@fuzz(3000)
@given(seed=st.integers(0, 2**32))
def test_bulk_audiosocket_streams(seed: int) -> None:
    rng = random.Random(seed)
    stream, frames = _audiosocket_stream(rng)
    if rng.random() < 0.5:  # corrupt one byte, or cut the stream short
        at = rng.randrange(len(stream))
        stream = stream[:at] + bytes([rng.randrange(256)]) + stream[at + 1 :] if rng.random() < 0.5 else stream[:at]
        corrupted = True
    else:
        corrupted = False
    decoder = Decoder()
    got = 0
    try:
        for chunk in chopped(stream, [rng.randrange(len(stream) + 1) for _ in range(rng.randrange(10))]):
            got += len(decoder.feed(chunk))
        decoder.close()
    except AudioSocketError:
        assert corrupted
        return
    assert got == frames or corrupted


def _csv_file(rng: random.Random) -> tuple[bytes, str]:
    delimiter = rng.choice(";,")
    header = rng.choice(["ID;Телефон;Тип владельца;Владелец;Отметки;Комментарий", "id;phone", "Телефон;ID"])
    lines = [header.replace(";", delimiter)]
    numbers = ["8 916 123-45-67", "+7 (495) 123-45-67 доб. 12", "", "нет", "12345", "+7 701 123 45 67"]
    for i in range(rng.randrange(60)):
        cells = [str(i), rng.choice(numbers), rng.choice(["физ", "юр. лицо", "", "?"]), _rand_text(rng, 8)]
        cells += [rng.choice(["", "ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!"]), _rand_text(rng, 10)]
        if rng.random() < 0.1:
            cells[rng.randrange(len(cells))] = '"' + _rand_text(rng, 6) + rng.choice(['"', "", '""', '"x'])
        if rng.random() < 0.05:
            cells.append("\n")
        lines.append(delimiter.join(cells))
    text = "\r\n".join(lines) + rng.choice(["\r\n", "\n", ""])
    encoding = rng.choice(["utf-8", "utf-8-sig", "cp1251", "utf-16"])
    data = text.encode(encoding, errors="replace")
    if rng.random() < 0.15:
        at = rng.randrange(len(data) + 1)
        data = data[:at] + rng.randbytes(rng.randrange(1, 6)) + data[at:]
    return data, encoding


@fuzz(2000)
@given(seed=st.integers(0, 2**32))
def test_bulk_csv_files(seed: int) -> None:
    rng = random.Random(seed)
    data, _ = _csv_file(rng)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.csv"
        path.write_bytes(data)
        try:
            opened = open_text(path)
        except InputError:
            return
        try:
            tally = LineTally()
            try:
                items = list(iter_contacts(opened.text, str(path), tally))
            except InputError:
                return
            assert opened.scan is not None
            assert tally.header_lines + tally.blank_lines + tally.record_lines == opened.scan.lines
            for item in items:
                if isinstance(item, CsvContact):
                    PREPARER.prepare(item, NOW)
        finally:
            opened.close()
