"""After the answer: person / voicemail / silence / unsure, on Russian speech from espeak-ng.

Where espeak-ng is missing, a synthetic voice of the same length stands in (see synth.py), so
the assertions still run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dialer.audio.analyzer import (
    BeepDetected,
    CallAudioAnalyzer,
    Observation,
    SitDetected,
    SpeechPattern,
    SpeechStarted,
    ToneDetected,
)
from dialer.audio.toneplan import TonePlans
from dialer.domain.model import SpeechVerdict

from .synth import (
    FloatArray,
    add_noise,
    codec,
    espeak_available,
    espeak_ru,
    feed,
    random_drops,
    rms_dbm0_scale,
    silence,
    sine,
    synthetic_voice,
    to_int16,
    trim,
)

TEXTS = {
    "hello": "Алло, слушаю",
    "announcement": "абонент временно недоступен",
    "voicemail": (
        "Здравствуйте, вы позвонили на автоответчик, к сожалению сейчас никто не может ответить "
        "на ваш звонок, оставьте ваше сообщение после звукового сигнала"
    ),
}
# typical lengths at 160 wpm, for the synthetic stand-in
FALLBACK_MS = {"hello": 1000, "announcement": 1500, "voicemail": 8000}

Voice = Callable[[str, int], FloatArray]


@pytest.fixture(scope="session")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Voice:
    """voice(text_key, speed_wpm) → trimmed 8 kHz speech at −20 dBm0 (RMS of the voiced part)."""
    cache: dict[tuple[str, int], FloatArray] = {}
    folder: Path = tmp_path_factory.mktemp("espeak")

    def make(key: str, speed: int) -> FloatArray:
        if (key, speed) not in cache:
            if espeak_available():
                x = trim(espeak_ru(TEXTS[key], folder / f"{key}-{speed}.wav", speed))
            else:
                ms = FALLBACK_MS[key] * 160 // speed
                x = synthetic_voice(ms, np.random.default_rng(speed))
            cache[(key, speed)] = rms_dbm0_scale(x, -20.0)
        return cache[(key, speed)]

    return make


def ms(x: FloatArray) -> int:
    return len(x) * 1000 // 8000


def patterns(obs: list[Observation]) -> list[SpeechPattern]:
    return [o for o in obs if isinstance(o, SpeechPattern)]


def prepare(x: FloatArray, codec_name: str, snr_db: float | None, seed: int) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    if snr_db is not None:
        x = add_noise(x, snr_db, -20.0, rng)
    return codec(to_int16(x), codec_name)


@pytest.mark.parametrize("loss", [False, True], ids=["noloss", "loss5"])
@pytest.mark.parametrize("snr_db", [None, 20.0], ids=["clean", "snr20"])
@pytest.mark.parametrize("codec_name", ["none", "ulaw", "alaw"])
@pytest.mark.parametrize("speed", [110, 140, 175])
def test_person_is_decided_within_half_a_second_after_the_greeting(
    toneplans: TonePlans, voice: Voice, speed: int, codec_name: str, snr_db: float | None, loss: bool
) -> None:
    greeting = voice("hello", speed)
    assert 600 <= ms(greeting) <= 1600  # «Алло, слушаю» ≈ 0.8–1.5 s
    lead = 400  # picks up, then speaks
    x = prepare(np.concatenate([silence(lead), greeting, silence(3000)]), codec_name, snr_db, speed)
    drop = random_drops(len(x) // 160, 0.05, np.random.default_rng(speed)) if loss else set()
    analyzer = CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0)
    found = patterns(feed(analyzer, x, drop=drop))
    assert [p.verdict for p in found] == [SpeechVerdict.PERSON], found
    greeting_end = lead + ms(greeting)
    assert found[0].at_ms - greeting_end <= 500, f"person decided {found[0].at_ms - greeting_end} ms after"
    assert "greeting" in found[0].reason


@pytest.mark.parametrize("codec_name", ["none", "ulaw", "alaw"])
@pytest.mark.parametrize("speed", [140, 175])
def test_voicemail_monologue_then_beep(toneplans: TonePlans, voice: Voice, speed: int, codec_name: str) -> None:
    monologue = voice("voicemail", speed)
    assert ms(monologue) >= 4000
    lead = 300
    beep_start = lead + ms(monologue) + 300
    x = np.concatenate([silence(lead), monologue, silence(300), sine(1000, 500, -12.0), silence(2000)])
    analyzer = CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0)
    obs = feed(analyzer, prepare(x, codec_name, 30.0, speed))
    found = patterns(obs)
    assert found and all(p.verdict is SpeechVerdict.VOICEMAIL for p in found), found
    # the monologue alone is enough after 3 s of speech
    assert found[0].at_ms <= lead + 3000 + 100
    beeps = [o for o in obs if isinstance(o, BeepDetected)]
    assert len(beeps) == 1
    assert beep_start + 200 <= beeps[0].at_ms <= beep_start + 300
    assert abs(beeps[0].frequency_hz - 1000) <= 50
    assert "beep" in found[-1].reason and found[-1].confidence > found[0].confidence
    assert analyzer.verdict is not None and analyzer.verdict.verdict is SpeechVerdict.VOICEMAIL


@pytest.mark.parametrize("line_noise_dbm0", [None, -60.0, -45.0])
def test_silence_after_answer(toneplans: TonePlans, line_noise_dbm0: float | None) -> None:
    x = silence(6000)
    if line_noise_dbm0 is not None:
        x = add_noise(x, 0.0, line_noise_dbm0, np.random.default_rng(5))
    analyzer = CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0)
    obs = feed(analyzer, codec(to_int16(x), "alaw"))
    assert not [o for o in obs if isinstance(o, SpeechStarted)]
    found = patterns(obs)
    assert [p.verdict for p in found] == [SpeechVerdict.SILENCE]
    assert 4000 <= found[0].at_ms <= 4040


def test_greeting_too_long_for_a_person_too_short_for_a_machine_is_unsure(toneplans: TonePlans, voice: Voice) -> None:
    talk = np.concatenate([voice("hello", 175), silence(150), voice("announcement", 175)])
    assert 2100 <= ms(talk) <= 2900
    x = np.concatenate([silence(300), talk, silence(3000)])
    found = patterns(feed(CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0), to_int16(x)))
    assert [p.verdict for p in found] == [SpeechVerdict.UNSURE]
    assert "longer than a person's" in found[0].reason


def test_short_pause_inside_a_greeting_does_not_split_it(toneplans: TonePlans, voice: Voice) -> None:
    # «Алло» … «слушаю» with a 250 ms hesitation: still one greeting, decided after «слушаю»
    hello = voice("hello", 175)
    half = len(hello) // 2
    x = np.concatenate([silence(300), hello[:half], silence(250), hello[half:], silence(2000)])
    found = patterns(feed(CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0), to_int16(x)))
    end = 300 + ms(hello) + 250
    assert [p.verdict for p in found] == [SpeechVerdict.PERSON]
    assert end < found[0].at_ms <= end + 500


def test_no_pattern_before_the_answer_and_timing_from_mark_answered(toneplans: TonePlans, voice: Voice) -> None:
    # early media: an announcement, then the far end answers at 3.0 s and a person speaks
    ann, hello = voice("announcement", 175), voice("hello", 175)
    x = np.concatenate([silence(200), ann, silence(3000 - 200 - ms(ann)), silence(300), hello, silence(2000)])
    analyzer = CallAudioAnalyzer(toneplans.get("ru"))
    pcm = to_int16(x)
    early = feed(analyzer, pcm[: 3000 * 8])
    assert patterns(early) == [] and analyzer.verdict is None
    assert any(isinstance(o, SpeechStarted) for o in early)  # the VAD runs on early media too
    analyzer.mark_answered(150)
    late = [o for i in range(150, len(pcm) // 160) for o in analyzer.feed(pcm[i * 160 : (i + 1) * 160].tobytes(), i)]
    found = patterns(late)
    assert [p.verdict for p in found] == [SpeechVerdict.PERSON]
    assert found[0].at_ms - (3300 + ms(hello)) <= 500


@pytest.mark.parametrize("codec_name", ["none", "ulaw", "alaw"])
@pytest.mark.parametrize("country", ["ru", "us"])
@pytest.mark.parametrize("key", ["announcement", "voicemail", "hello"])
def test_speech_is_never_a_tone(toneplans: TonePlans, voice: Voice, key: str, country: str, codec_name: str) -> None:
    for speed in (110, 175, 220):
        for snr_db in (None, 20.0):
            x = np.concatenate([silence(100), voice(key, speed), silence(300), voice(key, speed), silence(500)])
            obs = feed(CallAudioAnalyzer(toneplans.get(country)), prepare(x, codec_name, snr_db, speed))
            assert [o for o in obs if isinstance(o, ToneDetected | SitDetected)] == []


def test_beep_inside_speech_is_not_reported_and_no_beep_before_speech(toneplans: TonePlans, voice: Voice) -> None:
    # a beep with no speech before it after the answer is not a voicemail beep (could be a tone)
    x = np.concatenate([silence(300), sine(1000, 500, -12.0), silence(4500)])
    obs = feed(CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0), to_int16(x))
    assert not [o for o in obs if isinstance(o, BeepDetected)]
    assert [p.verdict for p in patterns(obs)] == [SpeechVerdict.SILENCE]
    # speech alone gives no beep either
    y = np.concatenate([silence(300), voice("voicemail", 175), silence(1000)])
    obs = feed(CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0), to_int16(y))
    assert not [o for o in obs if isinstance(o, BeepDetected)]
