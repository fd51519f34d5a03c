"""Fingerprints of known announcements: recognised from any offset through G.711, level, noise and
frame loss; never confused with another recording, other speech, tones, silence or noise; the
library loader's validation; CallAnalysis integration.

The library is the simulator's (dialer/sim/data/announcements.yaml), loaded through the same
loader the worker uses. Other speech comes from espeak-ng with the simulator clips' voice.
"""

from __future__ import annotations

import math
import shutil
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest

from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import Hypothesis
from dialer.audio.fingerprint import (
    FingerprintLibrary,
    FingerprintMatch,
    FingerprintMatcher,
    KnownRecording,
    MatcherConfig,
    distinct_speech_windows,
    load_library,
    parse_index,
    resample,
)
from dialer.audio.toneplan import TonePlans
from dialer.corpus.labels import NetworkScript
from dialer.domain.fusion import Action, AudioFacts, NetworkFacts, fuse
from dialer.domain.model import CallClass
from dialer.errors import ConfigError
from dialer.session.inputs import AudioFrame, Progress, Recognized
from dialer.session.replay import corpus_timeline, drive
from dialer.session.session import CallSession, SessionSetup
from dialer.sim.audio import DATA_DIR, clip, tone
from dialer.sim.audio import silence as sim_silence

from .synth import (
    add_noise,
    codec,
    espeak_ru,
    frames_of,
    random_drops,
    rms_dbm0_scale,
    to_int16,
    trim,
)

EXPECTED = {
    "unreachable": CallClass.ANN_TEMPORARILY_UNAVAILABLE,
    "switched_off": CallClass.ANN_SWITCHED_OFF,
    "not_in_service": CallClass.ANN_NOT_IN_SERVICE,
    "blocked": CallClass.ANN_BLOCKED,
    "bad_format": CallClass.ANN_DOES_NOT_EXIST,
    "number_changed": CallClass.ANN_NUMBER_CHANGED,
    "busy_stay": CallClass.ANN_SUBSCRIBER_BUSY,
    "suspended": CallClass.ANN_SUSPENDED,
    "ivr": CallClass.IVR,
}
# Other texts in the same voice, chosen to share words with the library («номер … заблокирован»,
# «абонент временно …», «здравствуйте, вы позвонили …»): the hard cases for a fingerprint.
OTHER_TEXTS = (
    "Номер временно заблокирован.",
    "Номер абонента заблокирован.",
    "Абонент временно заблокирован.",
    "Номер не существует.",
    "Абонент в сети не зарегистрирован.",
    "Аппарат абонента выключен.",
    "Обслуживание номера временно приостановлено.",
    "Здравствуйте, вы позвонили в компанию Василёк. Оставайтесь на линии.",
    "Алло, слушаю.",
)


def samples(name: str) -> np.ndarray:
    return np.frombuffer(clip(name).pcm, dtype="<i2").astype(np.float64)


@pytest.fixture(scope="module")
def library() -> FingerprintLibrary:
    return load_library(DATA_DIR)


def degrade(x: np.ndarray, level_dbm0: float, snr_db: float | None, law: str, rng: np.random.Generator) -> np.ndarray:
    y = rms_dbm0_scale(x, level_dbm0)
    if snr_db is not None:
        y = add_noise(y, snr_db, level_dbm0, rng)
    return codec(to_int16(y), law)


def run(
    lib: FingerprintLibrary, x: np.ndarray, loss: float = 0.0, rng: np.random.Generator | None = None
) -> tuple[FingerprintMatch | None, FingerprintMatcher]:
    m = FingerprintMatcher(lib)
    frames = frames_of(to_int16(x))
    drops = random_drops(len(frames), loss, rng) if rng is not None and loss else set()
    for i, pcm in enumerate(frames):
        if i in drops:
            continue
        found = m.feed(pcm, i)
        if found is not None:
            return found, m
    return None, m


def test_library_of_the_simulator_loads_with_its_classes(library: FingerprintLibrary) -> None:
    assert {r.name: r.call_class for r in library.recordings} == EXPECTED
    assert all(700 <= r.speech_ms <= r.duration_ms for r in library.recordings)
    assert library.source.endswith("announcements.yaml")


CONDITIONS = [  # (codec, level dBm0, SNR dB or None, frame loss)
    ("ulaw", -30.0, 20.0, 0.05),
    ("alaw", 0.0, 20.0, 0.05),
    ("ulaw", -12.0, None, 0.0),
    ("none", -20.0, 20.0, 0.05),
]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recognised_from_any_offset_through_codec_level_noise_and_loss(library: FingerprintLibrary, name: str) -> None:
    rng = np.random.default_rng(sorted(EXPECTED).index(name))
    x = samples(name)
    for law, level, snr, loss in CONDITIONS:
        # the network starts mid-announcement, after some silence, then repeats it
        offset = int(rng.integers(0, len(x) // 2))
        lead = np.zeros(int(rng.integers(0, 4000)))
        q = np.concatenate([lead, x[offset:], np.zeros(2000), x])
        found, m = run(library, degrade(q, level, snr, law, rng), loss, rng)
        assert found is not None, f"{name} not recognised ({law}, {level} dBm0, SNR {snr}, loss {loss}): {m.closest()}"
        assert (found.name, found.call_class) == (name, EXPECTED[name])
        assert 0.9 <= found.score <= 1.0
        assert found.matched_ms <= 3500


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_clean_play_is_decided_within_its_first_seconds(library: FingerprintLibrary, name: str) -> None:
    x = samples(name)
    found, _ = run(library, x)
    assert found is not None and found.name == name
    # long recordings decide after ~1.5 s of their speech (with its pauses: < 3 s of audio);
    # short ones need all of theirs, so they end no later than the recording does
    assert found.at_ms <= min(3000, len(x) / 8 + 20)
    assert found.ber <= 0.13


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_never_matches_another_recording_of_the_library(library: FingerprintLibrary, name: str) -> None:
    """Every recording against a library of all the others: all pairs, clean and degraded."""
    others = FingerprintLibrary.build([r for r in library.recordings if r.name != name])
    rng = np.random.default_rng(100 + sorted(EXPECTED).index(name))
    x = samples(name)
    q = np.concatenate([x, np.zeros(1000), x])
    for degraded in (to_int16(q), degrade(q, -20.0, 20.0, "alaw", rng)):
        found, _ = run(others, degraded.astype(np.float64))
        assert found is None, f"{name} taken for {found}"


def _spliced(head: str, head_ms: int, tail: str, name: str, cls: CallClass) -> KnownRecording:
    """A carrier's prompt spliced from another's opening words and a tail of its own."""
    x = np.concatenate([samples(head)[: head_ms * 8], samples(tail)])
    return KnownRecording.from_samples(name, cls, x)


def test_a_temporary_announcement_apart_from_the_rest_decides_on_one_second_of_voice(
    library: FingerprintLibrary,
) -> None:
    cfg = MatcherConfig()
    floor = math.ceil(cfg.min_distinct_speech_ms / library.params.hop_ms)
    quick = dict(zip((r.name for r in library.recordings), distinct_speech_windows(library, cfg), strict=True))
    # the simulator's temporary announcements share no recording with another class
    for name in ("unreachable", "switched_off", "busy_stay", "suspended"):
        assert quick[name] == floor, name
    # not-working classes and organisations' IVRs keep the full rule
    for name in ("not_in_service", "bad_format", "number_changed", "ivr"):
        assert quick[name] is None, name


def test_a_temporary_announcement_sharing_its_opening_with_a_not_working_one_waits_for_the_difference(
    library: FingerprintLibrary,
) -> None:
    temporary = library.recordings[[r.name for r in library.recordings].index("unreachable")]
    sibling = _spliced("unreachable", 1300, "not_in_service", "spliced", CallClass.ANN_NOT_IN_SERVICE)
    lib = FingerprintLibrary.build([temporary, sibling])
    cfg = MatcherConfig()
    quick, nw = distinct_speech_windows(lib, cfg)
    assert nw is None
    # 1.3 s of shared audio hold more voice than the 1 s floor: it waits past it
    shared_voice = int(temporary.prints[0].active[: round(1300 / lib.params.hop_ms)].sum())
    assert quick is not None and quick > shared_voice
    # and a call playing the not-working sibling is not taken for the temporary one
    found, _ = run(lib, to_int16(np.concatenate([samples("unreachable")[: 1300 * 8], samples("not_in_service")])))
    assert found is None or found.name == "spliced", found


@pytest.fixture(scope="module")
def other_speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    assert shutil.which("espeak-ng"), "espeak-ng is required (Debian package espeak-ng)"
    d = tmp_path_factory.mktemp("espeak")
    # the simulator's voice: espeak-ng -v ru -s 150 (dialer/sim/data/manifest.json)
    out = {t: trim(espeak_ru(t, d / f"{i}.wav", speed_wpm=150)) for i, t in enumerate(OTHER_TEXTS)}
    for name in ("person_hello", "person_again", "voicemail"):
        out[name] = samples(name)
    return out


def test_never_matches_other_speech(library: FingerprintLibrary, other_speech: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(7)
    for text, x in other_speech.items():
        q = np.concatenate([x, np.zeros(1000), x])
        for degraded in (to_int16(q), degrade(q, -15.0, 20.0, "ulaw", rng)):
            found, m = run(library, degraded.astype(np.float64))
            assert found is None, f"«{text}» taken for {found}"
            closest = m.closest()
            # a margin, not only a miss: nothing came near the acceptance threshold
            assert closest is None or closest[0] > 0.14, f"«{text}» came close: {closest}"


def test_never_matches_tones_silence_or_noise(library: FingerprintLibrary) -> None:
    rng = np.random.default_rng(8)
    signals = {
        name: np.frombuffer(tone(name, 6.0), dtype="<i2").astype(np.float64)
        for name in ("busy", "congestion", "ringback", "sit", "beep", "dial")
    }
    signals["silence"] = np.frombuffer(sim_silence(6.0), dtype="<i2").astype(np.float64)
    signals["white noise"] = rng.normal(0.0, 2000.0, 48000)
    signals["noisy silence"] = add_noise(np.zeros(48000), 20.0, -20.0, rng)
    for what, x in signals.items():
        found, _ = run(library, x)
        assert found is None, f"{what} taken for {found}"


def test_late_duplicate_and_short_frames_are_handled(library: FingerprintLibrary) -> None:
    x = to_int16(np.concatenate([samples("suspended"), samples("suspended")]))
    frames = frames_of(x)
    m = FingerprintMatcher(library)
    found = None
    for i, pcm in enumerate(frames):
        if i == 30:
            pcm = pcm[:182]  # Asterisk's occasional short frame
        found = m.feed(pcm, i) or found
        if i > 0:
            assert m.feed(frames[i - 1], i - 1) is None  # late/duplicate: ignored
        if found:
            break
    assert found is not None and found.name == "suspended"
    assert m.done and m.feed(frames[-1], len(frames) + 5) is None  # decided: no more work


def test_nothing_to_match_without_recordings() -> None:
    m = FingerprintMatcher(FingerprintLibrary())
    assert m.done
    assert m.feed(bytes(320), 0) is None
    with pytest.raises(ValueError, match="8000 Hz"):
        FingerprintMatcher(FingerprintLibrary(), sample_rate=16000)


# --- the loader -----------------------------------------------------------------------------------
def write_wav(path: Path, x: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_int16(x).astype("<i2").tobytes())


def test_a_16_khz_wav_is_resampled_and_still_matches_the_8_khz_audio(tmp_path: Path) -> None:
    x8 = samples("not_in_service")
    write_wav(tmp_path / "nis.wav", resample(x8, 8000, 16000), 16000)
    (tmp_path / "announcements.yaml").write_text(
        "announcements:\n  - file: nis.wav\n    class: ann_not_in_service\n    text: номер не обслуживается\n"
        "    note: test\n",
        encoding="utf-8",
    )
    lib = load_library(tmp_path)
    rec = lib.recordings[0]
    assert (rec.name, rec.call_class, rec.note) == ("nis", CallClass.ANN_NOT_IN_SERVICE, "test")
    rng = np.random.default_rng(3)
    found, _ = run(lib, degrade(np.concatenate([x8[3000:], x8]), -20.0, 20.0, "ulaw", rng), 0.05, rng)
    assert found is not None and found.name == "nis"


def test_shipped_config_index_is_valid_and_empty() -> None:
    root = Path(__file__).resolve().parents[2]
    assert parse_index(root / "config" / "announcements" / "announcements.yaml") == []
    assert not load_library(root / "config" / "announcements")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("announcements:\n  - file: a.sl\n    class: ann_nonsense\n", 3, "unknown call class 'ann_nonsense'"),
        ("announcements:\n  - file: missing.sl\n    class: ivr\n", 2, "not found"),
        ("announcements:\n  - file: a.sl\n    class: ivr\n    colour: red\n", 4, "unknown key 'colour'"),
        ("announcements:\n  - class: ivr\n", 2, "needs `file:`"),
        ("announcements:\n  - file: a.sl\n", 2, "needs `class:`"),
        ("announcements:\n  - file: a.sl\n    class: ivr\n  - file: a.sl\n    class: ivr\n", 4, "already used"),
        ("announcements:\n  - file: a.txt\n    class: ivr\n", 2, "unknown audio format"),
        ("announcements:\n  - file: quiet.sl\n    class: ivr\n", 2, "almost no sound"),
        ("recordings: []\n", 1, "under `announcements:`"),
    ],
)
def test_bad_index_names_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    (tmp_path / "a.sl").write_bytes(clip("blocked").pcm)
    (tmp_path / "a.txt").write_text("not audio", encoding="utf-8")
    (tmp_path / "quiet.sl").write_bytes(bytes(16000))
    index = tmp_path / "announcements.yaml"
    index.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_library(tmp_path)
    assert f"{index}:{line}" in str(err.value)
    assert message in str(err.value)


def test_recordings_named_twice_are_refused() -> None:
    rec = KnownRecording.from_samples("x", CallClass.IVR, samples("ivr"))
    with pytest.raises(ValueError, match="named twice"):
        FingerprintLibrary.build([rec, rec])


# --- integration with the call session and the fusion -------------------------------------------------
def _session(toneplans: TonePlans, library: FingerprintLibrary, *, decoding: bool = False) -> CallSession:
    from dialer.asr.catalogue import load_catalogue

    root = Path(__file__).resolve().parents[2]
    matcher = PhraseMatcher(load_catalogue(root / "config" / "phrases.yaml"))
    return SessionSetup(toneplans.get("ru"), matcher=matcher, fingerprints=library).session(
        uuid.uuid4(), decoding=decoding
    )


def test_call_session_turns_a_match_into_final_phrase_facts(library: FingerprintLibrary, toneplans: TonePlans) -> None:
    call = _session(toneplans, library)
    assert not call.phrase_facts().available  # no speech model, nothing matched yet
    call.feed(Progress(), 0)
    for i, pcm in enumerate(frames_of(to_int16(samples("not_in_service")))):
        call.feed(AudioFrame(pcm, i), (i + 1) * 20)
    # the session acted on it at once: a known not-working recording in early media
    assert call.evidence is not None and call.evidence.call_class is CallClass.ANN_NOT_IN_SERVICE
    facts = call.phrase_facts()
    assert facts.available and facts.final
    assert facts.call_class is CallClass.ANN_NOT_IN_SERVICE
    assert facts.phrase == "recording not_in_service" and facts.score >= 0.9
    # strong enough for «Некорректный контакт» in early media
    d = fuse(NetworkFacts(progress=True), AudioFacts(available=True), facts, 2500)
    assert d.action is Action.HANGUP and d.evidence.call_class is CallClass.ANN_NOT_IN_SERVICE


def test_a_better_final_asr_match_is_kept_over_the_fingerprint(
    library: FingerprintLibrary, toneplans: TonePlans
) -> None:
    call = _session(toneplans, library, decoding=True)
    call.feed(Progress(), 0)
    heard = list(frames_of(to_int16(samples("blocked"))))
    for i, pcm in enumerate(heard):
        call.feed(AudioFrame(pcm, i), (i + 1) * 20)
    fp = call.listening.fingerprint
    assert fp is not None and fp.score < 1.0
    t = len(heard) * 20
    # a partial ASR result does not displace it (its text is carried along) …
    call.feed(Recognized(Hypothesis("абонент временно недоступен", False)), t)
    facts = call.phrase_facts()
    assert facts.call_class is CallClass.ANN_BLOCKED and facts.phrase == "recording blocked"
    assert facts.text == "абонент временно недоступен"
    # … a final one that scores higher does
    call.feed(Recognized(Hypothesis("абонент временно недоступен попробуйте позвонить позже", True)), t)
    facts = call.phrase_facts()
    assert facts.call_class is CallClass.ANN_TEMPORARILY_UNAVAILABLE and facts.score > fp.score


def test_replay_settles_sit_and_announcement_on_the_recording(
    library: FingerprintLibrary, toneplans: TonePlans
) -> None:
    """Scenario 05 through the call session: SIT, «номер не обслуживается», cause 1 — without a
    speech model."""
    pcm = tone("sit") + clip("not_in_service").pcm
    end_ms = len(pcm) // 16
    script = NetworkScript(progress_ms=0, hangup_ms=end_ms, cause=1, dial_status="NOANSWER")
    plain = SessionSetup(toneplans.get("ru")).session(uuid.uuid4())
    without = drive(plain, corpus_timeline(pcm, script, 8000), network_confirms=True)
    assert without.evidence is not None and without.evidence.call_class is CallClass.SIT_UNRECOGNISED
    with_lib = drive(_session(toneplans, library), corpus_timeline(pcm, script, 8000), network_confirms=True)
    assert with_lib.evidence is not None
    assert with_lib.evidence.call_class is CallClass.ANN_NOT_IN_SERVICE
    assert with_lib.action is Action.HANGUP  # decided while the announcement still played
    assert with_lib.decided_at_ms is not None and with_lib.decided_at_ms < end_ms
    assert any(st.kind == "fingerprint" and "not_in_service" in st.text for st in with_lib.session.trace)


def test_settings_point_at_the_shipped_library_and_the_app_loads_it_once(tmp_path: Path) -> None:
    from dialer import app
    from dialer.config import load_settings

    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "config" / "dialer.toml")
    assert settings.announcements_path == root / "config" / "announcements"
    assert app.fingerprint_library(settings.announcements_path) is None  # the shipped list is empty
    assert app.fingerprint_library(tmp_path / "absent") is None  # missing directory: no library
    lib = app.fingerprint_library(DATA_DIR)
    assert lib is not None and len(lib) == len(EXPECTED)
    assert app.fingerprint_library(DATA_DIR) is lib  # once per process

    toml = tmp_path / "dialer.toml"
    toml.write_text('[paths]\nannouncements = "anns"\n', encoding="utf-8")
    assert load_settings(toml).announcements_path == tmp_path / "anns"
    toml.write_text("[paths]\n", encoding="utf-8")
    assert load_settings(toml).announcements_path is None
