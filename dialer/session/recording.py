"""Call recordings: what the worker heard on one call, on disk, replayable.

Layout (version 1), one directory per call, ``<dir>/<YYYY-MM-DD>/<attempt id>/``:

``call.json``
    ``{"version": 1, "attempt_id", "started_at" (UTC ISO), "campaign", "contact", "attempt_no",
    "settings": {...}, "decoding": bool, "complete": bool, "decision": {...} | null}`` — written
    when the call starts and again when its verdict is recorded (``complete``: the call's log was
    written to its end).
``events.jsonl``
    every input the call's session was fed, in order, one JSON object per line, ``t`` = ms since
    the originate (the session's clock):

    - ``{"t", "k": "ami", "h": {headers}}`` — a raw AMI event of the attempt (replay runs it
      through the correlator again);
    - ``{"t", "k": "frame", "i": slot index, "n": bytes}`` — an AudioSocket payload as received;
      its bytes are the next ``n`` bytes of ``audio.slin``;
    - ``{"t", "k": "asr", "text", "final", "conf", "audio_ms"}`` — a recognizer hypothesis, when it
      reached the session; ``{"t", "k": "flushed"}`` — the recognizer's flush returned;
    - ``{"t", "k": "audio_end", "reason"}`` — the AudioSocket stream ended;
    - ``{"t", "k": "tick"}`` — the worker's timer for the session's next deadline fired (live timers
      fire a little late; a replay with the recorded settings feeds them as recorded);
    - ``{"t", "k": "in", "type": "answered" | "gone" | "originate_rejected" | "redirect_failed" |
      "stop", ...}`` — an input the worker made itself (a reconcile found the call answered or
      gone, the originate action failed, the hand-over's Redirect failed, the worker stopped).
``audio.slin``
    the received audio, signed 16-bit little-endian mono 8 kHz, payloads back to back.
``label.json`` (optional)
    ``{"call_class": …, "by": …, "at": …}`` — what a person says the call was (``dialer label``).

Audio after a hand-over to an operator is never written: a person's conversation is personal
data. With ``until = "decision"`` audio stops at the session's decision; with ``"hangup"`` it goes
on until the call ends (machines only). Writing happens on one thread, off the event loop; a full
disk or an unwritable directory stops recording with one log line and never affects a call.
Retention (``keep_days``, ``max_mb``) is enforced at start and after every recorded call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialer.asr.port import Hypothesis
from dialer.config import RecordingSettings
from dialer.errors import InputError

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1
CALL_FILE = "call.json"
EVENTS_FILE = "events.jsonl"
AUDIO_FILE = "audio.slin"
LABEL_FILE = "label.json"
QUEUE_MAX_OPS = 20_000  # ≈ 6 s of audio of 60 calls: past that the writer is stuck; drop, don't block


# --- writing ---------------------------------------------------------------------------------------

_Op = tuple[str, uuid.UUID, Any]  # (what, call, payload)


class Recorder:
    """The writer of every call recording of a worker process. ``start()``, then
    :meth:`open_call` per call; ``await aclose()`` at the end writes what is queued."""

    def __init__(
        self,
        settings: RecordingSettings,
        *,
        clock: Callable[[], datetime] | None = None,
        keep: Callable[[Mapping[str, Any] | None], bool] | None = None,
    ) -> None:
        self.settings = settings
        # given the call's decision when it closes: False deletes the recording (the learning
        # recorder keeps only calls that may hold an unknown announcement)
        self._keep = keep
        self.discarded = 0
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ops: queue.Queue[_Op | None] = queue.Queue(QUEUE_MAX_OPS)
        self._thread: threading.Thread | None = None
        self.broken: str | None = None  # why recording stopped (set once)
        self._open: dict[uuid.UUID, _Files] = {}  # writer thread only
        self._bytes_total = 0  # writer thread only

    @property
    def active(self) -> bool:
        return self.settings.enabled and self.broken is None

    def start(self) -> None:
        if not self.settings.enabled:
            return
        self._thread = threading.Thread(target=self._write_loop, name="recorder", daemon=True)
        self._thread.start()
        self._submit(("retention", uuid.UUID(int=0), None))

    async def aclose(self) -> None:
        if self._thread is None:
            return
        self._ops.put(None)  # blocking put: the writer drains the queue before the sentinel
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def open_call(self, attempt_id: uuid.UUID, meta: Mapping[str, Any]) -> CallRecording | None:
        if not self.active:
            return None
        day = self._clock().strftime("%Y-%m-%d")
        path = self.settings.dir / day / str(attempt_id)
        rec = CallRecording(self, attempt_id, path, dict(meta))
        self._submit(("open", attempt_id, (path, rec.meta)))
        return rec

    def _submit(self, op: _Op) -> bool:
        if not self.active:
            return False
        try:
            self._ops.put_nowait(op)
            return True
        except queue.Full:
            return False

    # -- the writer thread --------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            op = self._ops.get()
            if op is None:
                for files in self._open.values():
                    files.close()
                return
            if self.broken is not None:
                continue
            try:
                self._apply(op)
            except OSError as exc:
                self._stop(f"{exc.strerror or exc} ({getattr(exc, 'filename', None) or self.settings.dir})")

    def _stop(self, why: str) -> None:
        self.broken = why
        log.error("call recording stopped: %s; calls go on unrecorded", why)
        for files in self._open.values():
            with contextlib.suppress(OSError):
                files.close()
        self._open.clear()

    def _apply(self, op: _Op) -> None:
        what, call, payload = op
        if what == "open":
            path, meta = payload
            path.mkdir(parents=True, exist_ok=True)
            _write_json(path / CALL_FILE, meta)
            self._open[call] = _Files(path)
        elif what == "retention":
            self._bytes_total = enforce_retention(self.settings, self._clock())
        elif (files := self._open.get(call)) is not None:
            if what == "event":
                self._bytes_total += files.event(payload)
            elif what == "audio":
                self._bytes_total += files.audio(payload)
            elif what == "close":
                files.close()
                del self._open[call]
                if self._keep is not None and not self._keep(payload.get("decision")):
                    shutil.rmtree(files.path, ignore_errors=True)
                    self._bytes_total -= files.written  # or retention would walk the disk for nothing
                    self.discarded += 1
                    return
                _write_json(files.path / CALL_FILE, payload)
                if self._bytes_total > self.settings.max_mb * 1024 * 1024:
                    self._bytes_total = enforce_retention(self.settings, self._clock())


class _Files:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._events = (path / EVENTS_FILE).open("a", encoding="utf-8")
        self._audio = (path / AUDIO_FILE).open("ab")
        self.written = 0  # bytes of this call (the total forgets them when the call is discarded)

    def event(self, line: str) -> int:
        self._events.write(line)
        self.written += len(line)
        return len(line)

    def audio(self, pcm: bytes) -> int:
        self._audio.write(pcm)
        self.written += len(pcm)
        return len(pcm)

    def close(self) -> None:
        self._events.close()
        self._audio.close()


class CallRecording:
    """One call's recording, fed from the event loop (every method only queues work)."""

    def __init__(self, recorder: Recorder, attempt_id: uuid.UUID, path: Path, meta: dict[str, Any]) -> None:
        self._recorder = recorder
        self.attempt_id = attempt_id
        self.path = path
        self.meta = {"version": LAYOUT_VERSION, "attempt_id": str(attempt_id), "complete": False, **meta}
        self.audio_on = True
        self.failed = False  # the writer fell behind: this call's log is incomplete, nothing more goes

    def ami(self, t_ms: int, headers: Mapping[str, Any]) -> None:
        self._event({"t": t_ms, "k": "ami", "h": {str(k): _plain(v) for k, v in headers.items()}})

    def frame(self, t_ms: int, index: int, pcm: bytes) -> None:
        if not self.audio_on:
            return
        self._event({"t": t_ms, "k": "frame", "i": index, "n": len(pcm)})
        self._put(("audio", self.attempt_id, pcm))

    def hypothesis(self, t_ms: int, h: Hypothesis) -> None:
        self._event({"t": t_ms, "k": "asr", "text": h.text, "final": h.final, "conf": h.confidence,
                     "audio_ms": h.audio_ms})  # fmt: skip

    def mark(self, t_ms: int, kind: str, **fields: Any) -> None:
        """``flushed``, ``tick``, ``audio_end`` (reason=…), or ``in`` (type=…, fields)."""
        self._event({"t": t_ms, "k": kind, **fields})

    def stop_audio(self) -> None:
        """No more audio from now on (decision reached, or a person is with an operator)."""
        self.audio_on = False

    def close(self, decision: Mapping[str, Any] | None) -> None:
        self.meta.update(complete=not self.failed, decision=dict(decision) if decision is not None else None)
        self._put(("close", self.attempt_id, dict(self.meta)), force=True)

    def _event(self, obj: dict[str, Any]) -> None:
        self._put(("event", self.attempt_id, json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"))

    def _put(self, op: _Op, *, force: bool = False) -> None:
        if self.failed and not force:
            return
        if not self._recorder._submit(op) and not self.failed and self._recorder.active:
            self.failed = True
            log.warning("attempt %s: recorder queue full, the rest of the call is not recorded", self.attempt_id)


def _plain(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [str(x) for x in v]
    return "" if v is None else str(v)


def _write_json(path: Path, obj: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def call_dirs(root: Path) -> Iterator[Path]:
    """Every call directory under ``root`` (a day directory or the recordings root), oldest day first."""
    if (root / CALL_FILE).is_file():
        yield root
        return
    for day in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if (day / CALL_FILE).is_file():
            yield day
            continue
        yield from sorted(p for p in day.iterdir() if (p / CALL_FILE).is_file())


def enforce_retention(settings: RecordingSettings, now: datetime) -> int:
    """Delete day directories older than ``keep_days``, then the oldest calls until the total is
    under ``max_mb``. Returns the bytes left."""
    root = settings.dir
    if not root.is_dir():
        return 0
    cutoff = (now - timedelta(days=settings.keep_days)).strftime("%Y-%m-%d")
    for day in sorted(p for p in root.iterdir() if p.is_dir()):
        if day.name < cutoff:
            shutil.rmtree(day, ignore_errors=True)
    sizes = [(d, sum(f.stat().st_size for f in d.iterdir() if f.is_file())) for d in call_dirs(root)]
    total = sum(s for _, s in sizes)
    limit = settings.max_mb * 1024 * 1024
    for d, size in sizes:  # oldest first
        if total <= limit:
            break
        shutil.rmtree(d, ignore_errors=True)
        total -= size
    return total


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of ``events.jsonl`` (frames carry their audio)."""

    t_ms: int
    kind: str
    data: Mapping[str, Any]
    pcm: bytes = b""


@dataclass
class Recording:
    path: Path
    meta: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)
    label: dict[str, Any] | None = None

    @property
    def attempt_id(self) -> uuid.UUID:
        return uuid.UUID(str(self.meta["attempt_id"]))

    @property
    def decision(self) -> Mapping[str, Any] | None:
        d = self.meta.get("decision")
        return d if isinstance(d, Mapping) else None

    @property
    def time_scale(self) -> float:
        """How fast the recording's time ran (a simulator's: under 1; checked on reading)."""
        return float(self.meta.get("time_scale", 1.0))


def read_recording(path: Path) -> Recording:
    """Load one call directory; a damaged one is an :class:`InputError` naming file and line."""
    meta_path = path / CALL_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not a call recording (no {CALL_FILE})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{meta_path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("version") != LAYOUT_VERSION:
        raise InputError(f"{meta_path}: unsupported recording layout (version {meta.get('version')!r})")
    scale = meta.get("time_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
        raise InputError(f"{meta_path}: time_scale must be a number in (0, 1], not {scale!r}")
    rec = Recording(path, meta)
    audio = (path / AUDIO_FILE).read_bytes() if (path / AUDIO_FILE).exists() else b""
    pos = 0
    events = path / EVENTS_FILE
    with events.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                t, kind = int(obj["t"]), str(obj["k"])
                pcm = b""
                if kind == "frame":
                    n = int(obj["n"])
                    pcm, pos = audio[pos : pos + n], pos + n
                    if len(pcm) != n:
                        raise ValueError(f"{AUDIO_FILE} ends before this frame")
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                if lineno > 1 and not meta.get("complete", False):
                    break  # the worker stopped mid-line: keep what was written whole
                raise InputError(f"{events}:{lineno}: {exc}") from None
            rec.entries.append(Entry(t, kind, obj, pcm))
    label = path / LABEL_FILE
    if label.exists():
        try:
            rec.label = json.loads(label.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{label}: {exc}") from None
    return rec


def write_label(path: Path, call_class: str, by: str, now: datetime) -> None:
    if not (path / CALL_FILE).is_file():
        raise InputError(f"{path}: not a call recording (no {CALL_FILE})")
    _write_json(path / LABEL_FILE, {"call_class": call_class, "by": by, "at": now.isoformat()})
