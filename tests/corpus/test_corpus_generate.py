"""The corpus generator writes what it says: formats, labels, tone cadence and level, speech level,
codec round trips, discriminating-word positions, reproducibility."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.audio.toneplan import shipped_plan
from dialer.corpus.generate import (
    FULL,
    SMALL,
    Recipe,
    Speech,
    Voice,
    active_rms,
    plan_corpus,
    read_wav,
    render_corpus,
    rms_to_dbm0,
    split_disc,
    spoken_clip,
)
from dialer.corpus.labels import LABELS_FILE, CallLabel, read_labels
from dialer.corpus.tones import cadence_ms, render_tone
from dialer.corpus.tts import SPEAKERS, Synthesiser
from dialer.domain.model import CallClass
from dialer.errors import InputError

SR = SAMPLE_RATE_HZ  # the project's one line rate (dialer.audio.frames)


def _blocks_db(pcm: np.ndarray, block: int = 40) -> np.ndarray:
    """Level (dBm0) of consecutive 5 ms blocks."""
    x = pcm.astype(np.float64)
    n = len(x) // block
    ms = (x[: n * block].reshape(n, block) ** 2).mean(axis=1)
    return np.array([rms_to_dbm0(float(np.sqrt(m))) for m in ms])


def _runs(on: np.ndarray) -> list[tuple[bool, int]]:
    out: list[tuple[bool, int]] = []
    for v in on:
        if out and out[-1][0] == bool(v):
            out[-1] = (bool(v), out[-1][1] + 1)
        else:
            out.append((bool(v), 1))
    return out


TINY = [
    Recipe(
        "busy",
        "busy",
        CallClass.BUSY,
        tone_ms=3000,
        tone_level_dbm0=-10.0,
        lead_gap_ms=200,
        cause=17,
        dial_status="BUSY",
    ),
    Recipe(
        "congestion",
        "congestion",
        CallClass.CONGESTION,
        tone_ms=2000,
        tone_level_dbm0=-30.0,
        lead_gap_ms=0,
        codec="ulaw",
        cause=34,
        dial_status="CONGESTION",
    ),
    Recipe(
        "ann",
        "announcement",
        CallClass.ANN_TEMPORARILY_UNAVAILABLE,
        speech=Speech(Voice("festival", 100), "абонент временно недоступен | попробуйте позвонить позже"),
        speech_level_dbm0=-20.0,
        lead="sit",
        lead_gap_ms=300,
        repeat="twice",
        gap_ms=800,
        tail_ms=300,
        codec="alaw",
        cause=20,
        dial_status="CHANUNAVAIL",
    ),
    Recipe(
        "person",
        "person",
        CallClass.PERSON,
        speech=Speech(Voice("espeak", 160, 50), "алло слушаю"),
        speech_level_dbm0=-15.0,
        snr_db=20.0,
        lead_cycles=1,
        lead_gap_ms=1000,
        gap_ms=400,
        params={"repeat_gap_ms": 2000, "after_answer_min_ms": 7000},
    ),
    Recipe(
        "sit",
        "sit",
        CallClass.SIT_UNRECOGNISED,
        lead_cycles=2,
        tone_level_dbm0=0.0,
        lead_gap_ms=0,
        cause=1,
        dial_status="NOANSWER",
    ),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, CallLabel]]:
    out = tmp_path_factory.mktemp("tiny")
    render_corpus(out, TINY, seed=7)
    return out, {label.id: label for label in read_labels(out)}


def test_every_call_has_a_wav_and_a_wellformed_label(tiny: tuple[Path, dict[str, CallLabel]]) -> None:
    out, labels = tiny
    assert sorted(labels) == sorted(r.call_id for r in TINY)
    lines = (out / LABELS_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(TINY)
    for line in lines:
        data = json.loads(line)
        assert set(data) >= {"id", "call_class", "network", "text", "disc_end_ms", "duration_ms", "params"}
        assert set(data["network"]) == {"progress_ms", "answered_ms", "hangup_ms", "cause", "dial_status"}
    for label in labels.values():
        pcm = read_wav(out / f"{label.id}.wav")  # raises unless 8 kHz 16-bit mono
        assert abs(len(pcm) * 1000 / SR - label.duration_ms) <= 1
        assert 0 <= label.disc_end_ms <= label.duration_ms


BUSY_CADENCE_MS = (350, 350)  # config/tones.yaml, RU plan
CONGESTION_CADENCE_MS = (175, 175)


def test_tones_come_from_the_plan_the_detector_reads() -> None:
    plan = shipped_plan("ru")
    assert cadence_ms(plan.tone("busy")) == BUSY_CADENCE_MS
    assert cadence_ms(plan.tone("congestion")) == CONGESTION_CADENCE_MS
    # a dual tone of another plan: both frequencies, the level shared between them
    us_busy = render_tone(shipped_plan("us").tone("busy"), 500, -10.0)
    spec = np.abs(np.fft.rfft(us_busy[:4000]))
    peaks = sorted(np.argsort(spec)[-2:] * SR / 4000)
    assert np.allclose(peaks, [480, 620], atol=3)
    assert abs(rms_to_dbm0(float(np.sqrt(np.mean(us_busy[:4000] ** 2)))) - (-10.0)) < 0.2


def test_busy_tone_cadence_level_and_network_script(tiny: tuple[Path, dict[str, CallLabel]]) -> None:
    out, labels = tiny
    label = labels["busy"]
    pcm = read_wav(out / "busy.wav")
    db = _blocks_db(pcm)
    on = db > -40.0
    runs = _runs(on)
    # lead silence 200 ms, then 350/350 cadence for 3 s
    assert runs[0] == (False, 200 // 5)
    inner = runs[1:-1]
    assert all(n * 5 == (BUSY_CADENCE_MS[0] if v else BUSY_CADENCE_MS[1]) for v, n in inner)
    mask = np.zeros(len(pcm), dtype=bool)
    mask[: len(on) * 40] = on.repeat(40)
    on_pcm = pcm[mask]
    assert abs(rms_to_dbm0(float(np.sqrt(np.mean(on_pcm.astype(np.float64) ** 2)))) - (-10.0)) < 0.3
    assert label.disc_end_ms == 200  # the tone onset
    assert label.network.hangup_ms == label.duration_ms == 3200
    assert (label.network.cause, label.network.dial_status, label.network.answered_ms) == (17, "BUSY", None)


def test_congestion_after_ulaw_round_trip_keeps_its_level(tiny: tuple[Path, dict[str, CallLabel]]) -> None:
    out, _ = tiny
    pcm = read_wav(out / "congestion.wav")
    assert len(np.unique(pcm)) <= 256  # only G.711 reconstruction values survive the round trip
    db = _blocks_db(pcm, block=35)  # 4.375 ms blocks: 175 ms = 40 blocks
    on = db > -50.0
    inner = _runs(on)[:-1]
    assert all(abs(n * 35 / 8 - CONGESTION_CADENCE_MS[0]) <= 5 for _, n in inner)
    mask = np.zeros(len(pcm), dtype=bool)
    mask[: len(on) * 35] = on.repeat(35)
    level = rms_to_dbm0(float(np.sqrt(np.mean(pcm[mask].astype(np.float64) ** 2))))
    assert abs(level - (-30.0)) < 0.5


def test_announcement_layout_and_discriminating_word(tiny: tuple[Path, dict[str, CallLabel]]) -> None:
    out, labels = tiny
    label = labels["ann"]
    pcm = read_wav(out / "ann.wav")
    assert label.text == "абонент временно недоступен попробуйте позвонить позже"
    # SIT lead: 950 Hz at the start
    first = pcm[:2640].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(first))
    assert abs(np.argmax(spectrum) * SR / len(first) - 950.0) < 5.0
    speech_start_ms = 990 + 300
    # the prefix «абонент временно недоступен» ends inside the first of the two utterances
    one_utt_ms = (label.duration_ms - speech_start_ms - 800 - 300) / 2
    assert speech_start_ms + 500 < label.disc_end_ms < speech_start_ms + one_utt_ms - 300
    assert label.network.hangup_ms == label.duration_ms and label.network.answered_ms is None
    assert label.params["engine"] == "festival" and label.params["codec"] == "alaw"
    assert label.params["voice"] == "festival"
    # active speech level as asked (A-law changes it by well under 1 dB)
    speech = pcm[speech_start_ms * 8 :].astype(np.float64)
    assert abs(rms_to_dbm0(active_rms(speech)) - (-20.0)) < 1.0


def test_person_is_answered_and_greeting_ends_before_silence(tiny: tuple[Path, dict[str, CallLabel]]) -> None:
    out, labels = tiny
    label = labels["person"]
    pcm = read_wav(out / "person.wav").astype(np.float64)
    assert label.network.answered_ms == 2000  # 1 s ring + 1 s pause
    assert label.network.hangup_ms is None
    assert label.duration_ms >= label.network.answered_ms + 7000
    greet_end = label.disc_end_ms
    assert label.network.answered_ms + 400 < greet_end < label.network.answered_ms + 2500
    # after the greeting only the noise at 20 dB below the speech level remains
    tail = pcm[(greet_end + 200) * 8 :]
    assert abs(rms_to_dbm0(float(np.sqrt(np.mean(tail**2)))) - (-15.0 - 20.0)) < 1.0


def test_sit_only_call(tiny: tuple[Path, dict[str, CallLabel]]) -> None:
    out, labels = tiny
    pcm = read_wav(out / "sit.wav").astype(np.float64)
    seg = 330 * 8
    freqs = []
    for k in range(3):
        spec = np.abs(np.fft.rfft(pcm[k * seg : (k + 1) * seg]))
        freqs.append(np.argmax(spec) * SR / seg)
    assert np.allclose(freqs, [950, 1400, 1800], atol=4)
    assert labels["sit"].duration_ms == 2 * (990 + 1000)
    # 0 dBm0 sine: peak 22 656 (ITU G.711 reference)
    assert abs(np.max(np.abs(pcm[:seg])) - 22656) < 3


def test_split_disc() -> None:
    assert split_disc("абонент временно недоступен | попробуйте") == (
        "абонент временно недоступен попробуйте",
        "абонент временно недоступен",
    )
    assert split_disc("номер заблокирован") == ("номер заблокирован", None)
    assert split_disc("номер заблокирован |") == ("номер заблокирован", None)


def test_plan_is_deterministic_and_covers_every_class() -> None:
    a = plan_corpus(3, SMALL)
    assert a == plan_corpus(3, SMALL)
    assert a != plan_corpus(4, SMALL)
    classes = {r.call_class for r in a}
    assert {
        CallClass.BUSY,
        CallClass.CONGESTION,
        CallClass.NO_ANSWER,
        CallClass.SIT_UNRECOGNISED,
        CallClass.PERSON,
        CallClass.VOICEMAIL,
        CallClass.IVR,
        CallClass.ANSWERED_SILENCE,
    } <= classes
    assert {c for c in CallClass if c.value.startswith("ann_")} <= classes
    assert 60 <= len(a) <= 100  # CI-sized
    assert len(plan_corpus(3, FULL)) >= 3 * len(a)
    engines = {r.speech.voice.engine for r in a if r.speech is not None}
    assert engines == {"espeak", "festival"}
    ann = [r for r in a if r.kind == "announcement"]
    natural = [r for r in ann if r.speech is not None and r.speech.voice.engine == "festival"]
    assert len(natural) >= 2 * len({r.call_class for r in ann})  # the gate judges natural voices
    assert len(ann) - len(natural) >= 4  # espeak kept for safety checks


def test_full_corpus_has_the_variety_the_gate_needs() -> None:
    recipes = plan_corpus(1, FULL)
    ann = [r for r in recipes if r.kind == "announcement" and r.speech and r.speech.voice.engine == "festival"]
    assert {r.speech.voice.speaker.name for r in ann if r.speech} == {s.name for s in SPEAKERS}
    assert {r.speech.voice.speed for r in ann if r.speech} == {85, 100, 115, 125}
    assert {r.repeat for r in ann} == {"once", "twice", "cut"}
    assert {r.codec for r in ann} == {"slin", "ulaw", "alaw"}
    assert {r.noise for r in ann if r.snr_db is not None} == {"pink", "brown", "babble"}
    snrs = {r.snr_db for r in ann if r.snr_db is not None}
    assert min(snrs) == 10.0 and max(snrs) == 25.0
    levels = {r.speech_level_dbm0 for r in ann}
    assert min(levels) == -40.0 and max(levels) == 0.0
    assert any(r.speech and r.speech.tail_text for r in ann)  # RU then EN
    assert any(r.speech and "/" in r.speech.marked_text for r in ann)  # a pause inside
    persons = [r for r in recipes if r.kind == "person"]
    styles = {r.params["style"] for r in persons}
    assert styles == {"plain", "question", "slow", "again", "quiet"}
    assert all(r.gap_ms >= 2500 for r in persons if r.params["style"] == "slow")
    quiet = [r for r in persons if r.params["style"] == "quiet"]
    assert all(r.speech_level_dbm0 == -40.0 and r.snr_db is not None and 5 <= r.snr_db <= 20 for r in quiet)
    assert {r.noise for r in persons if r.snr_db is not None} == {"pink", "brown", "babble", "street"}
    vm = [r for r in recipes if r.kind == "voicemail"]
    assert {r.params["style"] for r in vm} == {"greeting", "service", "screening"}
    assert {r.params["beep"] for r in vm} == {True, False}


def test_greetings_span_short_to_long_with_inner_pauses(tmp_path: Path) -> None:
    """«Да?» is about 0.3 s; the longest greetings run to about 4 s with 100-800 ms pauses, and
    the label's discriminating point of a person is the end of the whole greeting."""
    synth = Synthesiser()
    short = Speech(Voice("festival", 100), "да")
    long_ = Speech(Voice("festival", 115), "здравствуйте / а кто это / говорите пожалуйста", (800, 700))
    synth.synthesise([*short.requests(), *long_.requests()])
    a, b = spoken_clip(short, synth), spoken_clip(long_, synth)
    assert 0.15 <= len(a.samples) / SR <= 0.6
    assert 3.0 <= len(b.samples) / SR <= 5.0
    # the pauses are there: two stretches of near silence of the drawn lengths
    db = _blocks_db(b.samples.astype(np.int16), block=80)
    quiet_runs = [n * 10 for v, n in _runs(db < -60.0) if v]
    assert sorted(quiet_runs)[-2:] == pytest.approx([700, 800], abs=40)


def test_announcement_pause_moves_the_discriminating_point_before_it() -> None:
    synth = Synthesiser()
    sp = Speech(Voice("festival", 100), "абонент временно недоступен / | попробуйте позвонить позже", (600,))
    synth.synthesise(sp.requests())
    clip = spoken_clip(sp, synth)
    first = synth.get(sp.requests()[0]).astype(np.float64)
    from dialer.corpus.audio import voiced_bounds

    lo, hi = voiced_bounds(first)
    assert clip.disc_end == hi - lo  # the end of the first part, before the pause


def test_rendering_is_reproducible(tmp_path: Path) -> None:
    recipes = [TINY[0], replace(TINY[3], snr_db=30.0)]
    render_corpus(tmp_path / "a", recipes, seed=5)
    render_corpus(tmp_path / "b", recipes, seed=5)
    for r in recipes:
        assert (tmp_path / "a" / f"{r.call_id}.wav").read_bytes() == (tmp_path / "b" / f"{r.call_id}.wav").read_bytes()
    assert (tmp_path / "a" / LABELS_FILE).read_text() == (tmp_path / "b" / LABELS_FILE).read_text()


def test_bad_label_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / LABELS_FILE).write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"labels.jsonl:1: missing field 'call_class'"):
        list(read_labels(tmp_path))
