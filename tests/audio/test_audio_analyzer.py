"""The per-call analyser: frame clock, gaps, late and short frames, rates, VAD floor."""

from __future__ import annotations

import numpy as np
import pytest

from dialer.audio.analyzer import CallAudioAnalyzer, SpeechStarted, ToneDetected
from dialer.audio.frames import FrameClock, frame_bytes, frame_slots, slin_to_int16, split_frames
from dialer.audio.levels import level_dbm0, sine_peak_for_dbm0
from dialer.audio.toneplan import TonePlans
from dialer.audio.vad import Vad
from dialer.domain.model import ToneKind
from dialer.errors import AudioSocketError

from .synth import add_noise, feed, render_tone, silence, sine, synthetic_voice, to_int16


def test_zero_dbm0_reference() -> None:
    x = sine(1000, 1000, 0.0)
    assert level_dbm0(float(np.mean(x**2))) == pytest.approx(0.0, abs=0.01)
    assert sine_peak_for_dbm0(3.17) == pytest.approx(32636, rel=1e-3)  # μ-law full scale
    assert level_dbm0(float(np.mean(sine(425, 1000, -10) ** 2))) == pytest.approx(-10.0, abs=0.01)
    assert level_dbm0(0.0) == -100.0


def test_frame_helpers() -> None:
    assert frame_bytes() == 320 and frame_bytes(16000) == 640
    assert frame_slots(320) == 1 and frame_slots(88) == 1 and frame_slots(640) == 2 and frame_slots(0) == 1
    assert slin_to_int16(b"\x01\x00\xff\xff").tolist() == [1, -1]
    with pytest.raises(AudioSocketError, match="181 bytes"):
        slin_to_int16(b"\x00" * 181)
    assert [len(f) for f in split_frames(np.zeros(400))] == [160, 160, 80]
    with pytest.raises(ValueError, match="20 ms"):
        frame_bytes(8001)


def test_frame_clock_orders_slots() -> None:
    clock = FrameClock()
    assert clock.admit(10) == 0  # the stream may start anywhere
    assert clock.admit(11) == 0
    assert clock.admit(14) == 2
    assert clock.admit(12) is None and clock.admit(14) is None  # late, duplicate
    assert clock.admit(15, n_slots=2) == 0 and clock.admit(17) == 0
    assert (clock.gap_slots, clock.late_slots) == (2, 2)
    with pytest.raises(ValueError):
        clock.admit(-1)


def test_time_comes_from_the_frame_index_not_from_arrival(toneplans: TonePlans) -> None:
    plan = toneplans.get("ru")
    x = to_int16(render_tone(plan.tone("busy"), 2000, -10.0))
    frames = [x[i : i + 160].tobytes() for i in range(0, len(x), 160)]
    a = CallAudioAnalyzer(plan)
    offset = 500  # the analysis joined 10 s into the call
    found = [o for i, f in enumerate(frames) for o in a.feed(f, offset + i)]
    assert [type(o) for o in found] == [ToneDetected]
    assert isinstance(found[0], ToneDetected)
    assert found[0].kind is ToneKind.BUSY and found[0].started_ms == offset * 20
    assert offset * 20 < found[0].at_ms <= offset * 20 + 1100


def test_late_duplicate_short_and_long_payloads(toneplans: TonePlans) -> None:
    plan = toneplans.get("ru")
    x = to_int16(render_tone(plan.tone("congestion"), 2000, -10.0))
    a = CallAudioAnalyzer(plan)
    out = []
    # 40 ms payloads (2 slots each) as some Asterisk builds send
    for i in range(0, 20):
        out += a.feed(x[i * 320 : (i + 1) * 320].tobytes(), 2 * i)
    assert a.feed(x[:160].tobytes(), 3) == []  # late: slot 3 was already analysed
    out += a.feed(x[6400:6488].tobytes(), 40)  # a short frame (88 bytes), as at the end of a call
    out += a.feed(b"", 41)  # empty payload: a missing slot
    for i in range(42, 100):
        out += a.feed(x[i * 160 : (i + 1) * 160].tobytes(), i)
    assert [o.kind for o in out if isinstance(o, ToneDetected)] == [ToneKind.CONGESTION]
    assert a.stats.late_slots == 1 and a.stats.short_frames == 1 and a.stats.missing_slots == 1
    with pytest.raises(AudioSocketError):
        a.feed(b"\x00\x01\x02", 200)


def test_sixteen_khz_audio(toneplans: TonePlans) -> None:
    plan = toneplans.get("ru")
    x = to_int16(render_tone(plan.tone("busy"), 2000, -10.0, rate=16000))
    a = CallAudioAnalyzer(plan, sample_rate=16000)
    found = [o for i in range(len(x) // 320) for o in a.feed(x[i * 320 : (i + 1) * 320].tobytes(), i)]
    assert [o.kind for o in found if isinstance(o, ToneDetected)] == [ToneKind.BUSY]


def test_mark_answered_first_call_wins(toneplans: TonePlans) -> None:
    a = CallAudioAnalyzer(toneplans.get("ru"))
    assert a.answered_at_ms is None
    a.mark_answered(50)
    a.mark_answered(80)
    assert a.answered_at_ms == 1000
    b = CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=240)
    b.mark_answered(5)
    assert b.answered_at_ms == 240


def test_vad_learns_line_noise_and_still_hears_speech(toneplans: TonePlans) -> None:
    rng = np.random.default_rng(3)
    noise_only = add_noise(silence(3000), 0.0, -40.0, rng)
    speech = synthetic_voice(1500, np.random.default_rng(4))
    speech *= sine_peak_for_dbm0(-20.0) / np.sqrt(2) / np.sqrt(np.mean(speech**2))
    x = np.concatenate([noise_only, add_noise(speech, 20.0, -20.0, rng), add_noise(silence(1000), 0, -40, rng)])
    obs = feed(CallAudioAnalyzer(toneplans.get("ru")), to_int16(x))
    starts = [o.at_ms for o in obs if isinstance(o, SpeechStarted)]
    assert len(starts) >= 1 and all(2900 <= t <= 4600 for t in starts), starts


def test_vad_ignores_steady_tones() -> None:
    from dialer.audio.levels import power_spectrum

    vad = Vad()
    x = sine(425, 3000, -10.0)
    events = []
    for i in range(0, len(x) // 160):
        f = x[i * 160 : (i + 1) * 160]
        events += vad.push(power_spectrum(f), level_dbm0(float(np.mean(f**2))), i * 20)
    assert events == [] and vad.voiced_ms_total == 0


def ced(duration_ms: int, level_dbm0: float, reversal_ms: int = 450) -> np.ndarray:  # type: ignore[type-arg]
    """A fax machine's answer tone: 2100 Hz with a phase reversal every ``reversal_ms`` (V.25)."""
    x = sine(2100, duration_ms, level_dbm0)
    n = len(x)
    flips = np.ones(n)
    step = reversal_ms * 8
    for k, start in enumerate(range(0, n, step)):
        flips[start : start + step] = -1.0 if k % 2 else 1.0
    return x * flips  # type: ignore[no-any-return]


@pytest.mark.parametrize("codec_name", ["ulaw", "alaw"])
@pytest.mark.parametrize("level", [-30.0, -10.0])
def test_a_fax_answer_tone_is_recognised_after_the_answer(toneplans: TonePlans, codec_name: str, level: float) -> None:
    from .synth import codec

    a = CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0)
    x = codec(to_int16(np.concatenate([silence(300), ced(3000, level)])), codec_name)
    found = [o for o in feed(a, x) if isinstance(o, ToneDetected) and o.kind is ToneKind.FAX]
    assert len(found) == 1
    assert 300 + 400 <= found[0].at_ms <= 300 + 1000  # within a second of the tone's start


def test_no_fax_in_beeps_speech_noise_or_before_the_answer(toneplans: TonePlans) -> None:
    rng = np.random.default_rng(5)
    beep = sine(1000, 600, -15.0)  # a voicemail's beep
    voice = synthetic_voice(3000, rng) * 3000
    noise = add_noise(silence(2000), 15.0, -30.0, rng)
    answered = CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0)
    obs = feed(answered, to_int16(np.concatenate([voice, beep, noise])))
    assert not [o for o in obs if isinstance(o, ToneDetected) and o.kind is ToneKind.FAX]
    early = CallAudioAnalyzer(toneplans.get("ru"))  # not answered: a fax cannot have picked up
    assert not [o for o in feed(early, to_int16(ced(3000, -10.0))) if isinstance(o, ToneDetected)]
