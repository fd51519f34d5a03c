"""Regenerate the simulator's speech clips (run once; the results are committed).

    python -m dialer.sim.make_audio [NAME…]    # needs espeak-ng, festival (festvox-ru) and sox

Most clips are spoken by espeak-ng (robotic: the fingerprint library and the tests use them); the
``spoken_*`` ones by festival's Russian voice, which a speech model reads like a carrier's recorded
announcement (the demo reads them by speech). Given names, only those clips are rewritten.

Each clip is spoken by espeak-ng (Russian voice), resampled by sox to 8 kHz 16-bit mono signed
linear (what AudioSocket carries), peak-normalised, and written as ``data/<name>.sl`` (raw, no
header) with an entry in ``data/manifest.json`` (text, class, duration). At run time the
simulator only reads these files, so it needs neither tool.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialer.audio.frames import SAMPLE_RATE_HZ

DATA_DIR = Path(__file__).resolve().parent / "data"
PEAK_AMPLITUDE = 12000  # loud enough for any VAD, well clear of clipping


@dataclass(frozen=True)
class ClipSpec:
    name: str
    text: str
    cls: str  # suggested class (as config/phrases.yaml maps the text); tests and the demo read it
    speed_wpm: int = 150
    festival: bool = False  # festival's Russian voice instead of espeak-ng


CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("unreachable", "Абонент временно недоступен. Попробуйте позвонить позже.", "unreachable"),
    ClipSpec("not_in_service", "Набранный вами номер не обслуживается.", "not_working"),
    ClipSpec("person_hello", "Алло, слушаю.", "person"),
    ClipSpec("person_again", "Алло? Говорите, я вас слушаю.", "person"),
    ClipSpec(
        "switched_off",
        "Аппарат абонента выключен или находится вне зоны действия сети.",
        "unreachable",
    ),
    ClipSpec("bad_format", "Вы набрали несуществующий формат номера.", "not_working"),
    ClipSpec(
        "ivr",
        "Здравствуйте, вы позвонили в компанию Ромашка. Наберите добавочный номер или дождитесь ответа оператора.",
        "ivr",
    ),
    ClipSpec("suspended", "Обслуживание абонента временно приостановлено.", "unreachable"),
    ClipSpec("busy_stay", "Абонент занят. Оставайтесь на линии или перезвоните.", "unreachable"),
    ClipSpec(
        "voicemail",
        "Здравствуйте, вы позвонили Ивану. Оставьте сообщение после сигнала.",
        "voicemail",
    ),
    ClipSpec("blocked", "Номер заблокирован.", "not_working"),
    ClipSpec("number_changed", "Номер абонента изменился.", "number_changed"),
    # read by speech in the demo (no fingerprint of them anywhere)
    ClipSpec(
        "spoken_unreachable", "Абонент временно недоступен. Попробуйте позвонить позже.", "unreachable", festival=True
    ),
    ClipSpec("spoken_not_in_service", "Набранный вами номер не обслуживается.", "not_working", festival=True),
    ClipSpec(
        "spoken_switched_off",
        "Аппарат абонента выключен или находится вне зоны действия сети.",
        "unreachable",
        festival=True,
    ),
)


def synthesise(spec: ClipSpec, workdir: Path) -> np.ndarray:
    if spec.festival:
        from dialer.corpus.tts import Say, Synthesiser, Voice

        say = Say(Voice("festival", 100), spec.text)
        synth = Synthesiser(workers=1)
        synth.synthesise([say])
        pcm = synth.get(say).astype(np.float64)
        peak = float(np.max(np.abs(pcm))) or 1.0
        return np.clip(pcm * (PEAK_AMPLITUDE / peak), -32768, 32767).astype("<i2")
    wav = workdir / f"{spec.name}.wav"
    raw = workdir / f"{spec.name}.raw"
    subprocess.run(["espeak-ng", "-v", "ru", "-s", str(spec.speed_wpm), "-w", str(wav), spec.text], check=True)
    subprocess.run(
        [
            "sox",
            str(wav),
            "-r",
            str(SAMPLE_RATE_HZ),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
            str(raw),
        ],
        check=True,
    )
    pcm = np.fromfile(raw, dtype="<i2").astype(np.float64)
    peak = float(np.max(np.abs(pcm))) or 1.0
    return np.clip(pcm * (PEAK_AMPLITUDE / peak), -32768, 32767).astype("<i2")


def main() -> int:
    for tool in ("espeak-ng", "sox", "festival"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt install espeak-ng sox festival festvox-ru)", file=sys.stderr)
            return 1
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    path = DATA_DIR / "manifest.json"
    manifest: dict[str, dict[str, object]] = json.loads(path.read_text("utf-8")) if only and path.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in CLIPS:
            if only and spec.name not in only:
                continue
            pcm = synthesise(spec, Path(tmp))
            path = DATA_DIR / f"{spec.name}.sl"
            path.write_bytes(pcm.tobytes())
            manifest[spec.name] = {
                "file": path.name,
                "text": spec.text,
                "class": spec.cls,
                "duration_s": round(len(pcm) / SAMPLE_RATE_HZ, 3),
                "voice": "festival (msu_ru_nsh)" if spec.festival else f"espeak-ng -v ru -s {spec.speed_wpm}",
            }
            print(f"{path.name}: {len(pcm) / SAMPLE_RATE_HZ:.2f} s")
    (DATA_DIR / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
