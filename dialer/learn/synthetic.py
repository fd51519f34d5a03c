"""Calls on which carriers repeat the same recordings, written as the worker writes call
recordings (``docs/recordings.md``): for the learning tests and ``bench/bench_learn.py``.

Each call: progress (early media) at 300 ms, a little line noise, then the carrier's recording —
from its start, or for a share of the calls from a point in its first half — looped with a pause,
through G.711 (μ- or A-law), at a random level with background noise and a few lost frames; the
carrier hangs up after ``cycles`` passes. When the call "had a recognizer", its recording carries
the hypotheses a decode-at-pauses engine gives: the words of each pass, final, 300 ms after the
pass ends plus a decode of 0.2–1.2 s (a partial first pass gives only its tail, with a lower
confidence). The recording's decision is what ``setup`` decides on replay.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dialer.audio.fingerprint import parse_index, read_audio
from dialer.audio.frames import FRAME_MS, SAMPLE_RATE_HZ, samples_per_frame
from dialer.audio.g711 import alaw_roundtrip, ulaw_roundtrip
from dialer.domain.model import CallClass
from dialer.session.explain import verdict
from dialer.session.recording import AUDIO_FILE, CALL_FILE, EVENTS_FILE, LAYOUT_VERSION, read_recording
from dialer.session.replay import replay_recording
from dialer.session.session import SessionSetup

PROGRESS_MS = 300
LEAD_IN_MS = 400  # line noise before the recording starts
PAUSE_MS = 800  # between two passes of the recording
PAUSE_SEEN_MS = 300  # a decode-at-pauses engine starts this long after the voice stops …
DECODE_MS = (200, 1200)  # … and takes this long (Whisper base on one core, README)
MID_SHARE = 0.25  # calls whose audio begins mid-announcement


@dataclass(frozen=True)
class Clip:
    name: str
    call_class: CallClass
    text: str
    samples: npt.NDArray[np.int16]

    @property
    def duration_ms(self) -> int:
        return len(self.samples) * 1000 // SAMPLE_RATE_HZ

    @property
    def lead_ms(self) -> int:
        """The recording's own silence before its first word."""
        loud = np.flatnonzero(np.abs(self.samples.astype(np.int32)) > 1000)
        return int(loud[0]) * 1000 // SAMPLE_RATE_HZ if len(loud) else 0


def clips_from_library(directory: Path, names: list[str] | None = None) -> list[Clip]:
    """The recordings of a fingerprint library directory (e.g. the simulator's own clips)."""
    out = []
    for e in parse_index(directory / "announcements.yaml"):
        if names is not None and e.name not in names:
            continue
        x, rate = read_audio(e.file)
        assert rate == SAMPLE_RATE_HZ, f"{e.file}: 8 kHz clips only"
        out.append(Clip(e.name, e.call_class, e.text, x.astype(np.int16)))
    return out


def _hypotheses(
    clip: Clip, offset_ms: int, cycles: int, start_ms: int, rng: np.random.Generator
) -> list[dict[str, object]]:
    words = clip.text.split()
    out: list[dict[str, object]] = []
    t = start_ms
    first = True
    for _ in range(cycles):
        played = clip.duration_ms - (offset_ms if first else 0)
        t += played
        at = t + PAUSE_SEEN_MS + int(rng.integers(*DECODE_MS))
        if first and offset_ms:
            tail = words[int(len(words) * offset_ms / clip.duration_ms) + 1 :]
            if tail:
                out.append(
                    {
                        "t": at,
                        "k": "asr",
                        "text": " ".join(tail),
                        "final": True,
                        "conf": 0.45,
                        "audio_ms": played,
                    }
                )
        else:
            out.append(
                {
                    "t": at,
                    "k": "asr",
                    "text": clip.text,
                    "final": True,
                    "conf": 0.85,
                    "audio_ms": played,
                }
            )
        t += PAUSE_MS
        first = False
    return out


def call_audio(clip: Clip, rng: np.random.Generator, offset_ms: int, cycles: int) -> npt.NDArray[np.int16]:
    """The early media as the worker hears it (before frame loss)."""
    x = clip.samples.astype(np.float64)
    gain = 10 ** (rng.uniform(-8, 3) / 20)
    parts = [np.zeros(LEAD_IN_MS * 8), x[offset_ms * 8 :]]
    for _ in range(cycles - 1):
        parts += [np.zeros(PAUSE_MS * 8), x]
    parts.append(np.zeros(PAUSE_MS * 8))  # the carrier hangs up after a pause
    y = np.concatenate(parts) * gain
    noise_db = rng.uniform(-62, -48)  # background, dBm0-ish in int16 units
    y = y + rng.normal(0, 32768 * 10 ** (noise_db / 20) / np.sqrt(2), len(y))
    y = np.clip(y, -32768, 32767).astype(np.int16)
    codec = ulaw_roundtrip if rng.random() < 0.5 else alaw_roundtrip
    return np.asarray(codec(y), dtype=np.int16)


def write_call(
    root: Path,
    clip: Clip,
    rng: np.random.Generator,
    *,
    started_at: datetime,
    number: str,
    campaign: str = "learn",
    decoding: bool = True,
    cycles: int = 2,
    offset_ms: int | None = None,
    loss: float = 0.01,
    mid_share: float = MID_SHARE,
) -> Path:
    """One call recording under ``root/<day>/<attempt id>/``, complete but for its decision."""
    attempt = uuid.UUID(int=int(rng.integers(1, 2**63)) << 64 | int(rng.integers(1, 2**63)), version=4)
    off = _offset(clip, rng, offset_ms, mid_share)
    audio = call_audio(clip, rng, off, cycles)
    path = root / started_at.strftime("%Y-%m-%d") / str(attempt)
    path.mkdir(parents=True)
    events, pcm = _frames(audio, rng, loss)
    end = PROGRESS_MS + len(audio) // samples_per_frame(SAMPLE_RATE_HZ) * FRAME_MS
    events = [_answered_event(attempt, number), *events]
    events += [
        {"t": end, "k": "in", "type": "gone", "cause": 16, "dial_status": "CANCEL"},
        {"t": end, "k": "audio_end", "reason": "hung up"},
    ]
    if decoding:  # the last decode may come after the hang-up: the session waits for the flush
        hyps = _hypotheses(clip, off, cycles, PROGRESS_MS + LEAD_IN_MS, rng)
        events += [*hyps, {"t": max([end, *(int(str(h["t"])) for h in hyps)]), "k": "flushed"}]
    events.sort(key=lambda e: (int(str(e["t"])), e["k"] != "frame"))
    (path / EVENTS_FILE).write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), "utf-8")
    (path / AUDIO_FILE).write_bytes(bytes(pcm))
    meta = _meta(attempt, clip, off, started_at=started_at, campaign=campaign, number=number, decoding=decoding)
    (path / CALL_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return path


def _offset(clip: Clip, rng: np.random.Generator, offset_ms: int | None, mid_share: float) -> int:
    """Where in the recording the worker's audio begins."""
    if offset_ms is not None:
        return offset_ms
    if rng.random() < mid_share:  # the worker's audio began mid-announcement
        return int(rng.integers(clip.duration_ms // 8, clip.duration_ms // 2))
    return int(rng.integers(0, 60))  # the carrier starts its recording with the early media (± a frame)


def _answered_event(attempt: uuid.UUID, number: str) -> dict[str, object]:
    return {
        "t": PROGRESS_MS,
        "k": "ami",
        "h": {
            "Event": "Newstate",
            "Channel": f"Local/{number[1:]}@dialer-dial-0001;1",
            "ChannelState": "6",
            "ChannelStateDesc": "Up",
            "Uniqueid": str(attempt),
            "Linkedid": str(attempt),
        },
    }


def _frames(
    audio: npt.NDArray[np.int16], rng: np.random.Generator, loss: float
) -> tuple[list[dict[str, object]], bytearray]:
    """The frame events of ``audio`` and their payloads, a share ``loss`` of them lost on the way."""
    per = samples_per_frame(SAMPLE_RATE_HZ)
    events: list[dict[str, object]] = []
    pcm = bytearray()
    for i in range(len(audio) // per):
        if rng.random() < loss:
            continue  # lost on the way: never reached the worker
        chunk = audio[i * per : (i + 1) * per].astype("<i2").tobytes()
        events.append({"t": PROGRESS_MS + (i + 1) * FRAME_MS, "k": "frame", "i": i, "n": len(chunk)})
        pcm += chunk
    return events, pcm


def _meta(
    attempt: uuid.UUID, clip: Clip, off: int, *, started_at: datetime, campaign: str, number: str, decoding: bool
) -> dict[str, object]:
    return {
        "version": LAYOUT_VERSION,
        "attempt_id": str(attempt),
        "started_at": started_at.isoformat(),
        "campaign": campaign,
        "contact": f"learn-{attempt.hex[:8]}",
        "attempt_no": 1,
        "number": number,
        "decoding": decoding,
        "audio": True,
        "settings": {"synthetic": True},  # never the replay's own: its deadlines are derived
        "complete": True,
        "decision": None,
        "truth": {
            "clip": clip.name,
            "call_class": clip.call_class.value,
            "offset_ms": off,
            "playback_ms": PROGRESS_MS + LEAD_IN_MS,
            "first_word_ms": PROGRESS_MS + LEAD_IN_MS + max(0, clip.lead_ms - off),
        },
    }


def decide_live(path: Path, setup: SessionSetup) -> None:
    """Write the decision the worker would have recorded with ``setup``."""
    rec = read_recording(path)
    meta = dict(rec.meta)
    meta["decision"] = verdict(replay_recording(rec, setup))
    (path / CALL_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", "utf-8")


def write_calls(
    root: Path,
    clips: list[Clip],
    n: int,
    rng: np.random.Generator,
    setup: SessionSetup,
    *,
    start: datetime,
    numbers: list[str],
    spacing: timedelta = timedelta(minutes=3),
    mid_share: float = MID_SHARE,
) -> list[Path]:
    """``n`` calls, each repeating one of ``clips`` (drawn at random) to one of ``numbers``."""
    out = []
    for k in range(n):
        clip = clips[int(rng.integers(len(clips)))]
        at = start + k * spacing
        p = write_call(root, clip, rng, started_at=at, number=numbers[k % len(numbers)], mid_share=mid_share)
        decide_live(p, setup)
        out.append(p)
    return out
