"""The ``labels.jsonl`` schema of a corpus: one JSON object per call.

The call's clock starts at the originate; the audio file starts at the same instant (early media
reaches the analysis from the start), so ``*_ms`` values are positions in ``<id>.wav`` too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.domain.model import CallClass
from dialer.errors import InputError

LABELS_FILE = "labels.jsonl"


@dataclass(frozen=True, slots=True)
class NetworkScript:
    """What AMI would report, on the call's clock (ms since the originate)."""

    progress_ms: int | None = 0  # early media reaches the analysis context
    answered_ms: int | None = None  # the far end really answers; None = never
    hangup_ms: int | None = None  # the network ends the call; None = only we would end it
    cause: int | None = None  # Q.850 hangup cause at hangup_ms
    dial_status: str | None = None  # DialEnd DialStatus (None: no DialEnd, e.g. ring timeout)

    def to_json(self) -> dict[str, Any]:
        return {
            "progress_ms": self.progress_ms,
            "answered_ms": self.answered_ms,
            "hangup_ms": self.hangup_ms,
            "cause": self.cause,
            "dial_status": self.dial_status,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkScript:
        def opt_int(key: str) -> int | None:
            v = data.get(key)
            if v is None:
                return None
            if not isinstance(v, int) or isinstance(v, bool):
                raise InputError(f"network.{key} must be an integer or null, got {v!r}")
            return v

        status = data.get("dial_status")
        if status is not None and not isinstance(status, str):
            raise InputError(f"network.dial_status must be a string or null, got {status!r}")
        return cls(
            progress_ms=opt_int("progress_ms"),
            answered_ms=opt_int("answered_ms"),
            hangup_ms=opt_int("hangup_ms"),
            cause=opt_int("cause"),
            dial_status=status,
        )


@dataclass(frozen=True, slots=True)
class CallLabel:
    id: str
    call_class: CallClass  # what a perfect classifier says
    network: NetworkScript
    text: str  # what is spoken ("" for tone-only calls)
    disc_end_ms: int  # when the class becomes knowable: end of the discriminating word, tone onset…
    duration_ms: int
    kind: str  # generator recipe: announcement, busy, person …
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_class": self.call_class.value,
            "kind": self.kind,
            "network": self.network.to_json(),
            "text": self.text,
            "disc_end_ms": self.disc_end_ms,
            "duration_ms": self.duration_ms,
            "params": self.params,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallLabel:
        try:
            call_class = CallClass(data["call_class"])
            net = data["network"]
            if not isinstance(net, dict):
                raise InputError(f"network must be an object, got {net!r}")
            params = data.get("params", {})
            if not isinstance(params, dict):
                raise InputError(f"params must be an object, got {params!r}")
            return cls(
                id=str(data["id"]),
                call_class=call_class,
                network=NetworkScript.from_json(net),
                text=str(data.get("text", "")),
                disc_end_ms=int(data["disc_end_ms"]),
                duration_ms=int(data["duration_ms"]),
                kind=str(data.get("kind", "")),
                params=params,
            )
        except KeyError as exc:
            raise InputError(f"missing field {exc.args[0]!r}") from None
        except ValueError as exc:
            raise InputError(str(exc)) from None


def write_labels(path: Path, labels: list[CallLabel]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for label in labels:
            fh.write(json.dumps(label.to_json(), ensure_ascii=False, sort_keys=True) + "\n")


def read_labels(corpus_dir: Path) -> Iterator[CallLabel]:
    """Every label of ``corpus_dir/labels.jsonl``; a bad line raises InputError naming file:line."""
    path = corpus_dir / LABELS_FILE
    if not path.exists():
        raise InputError(f"{path}: no labels file (is {corpus_dir} a corpus directory?)")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise InputError("a label must be a JSON object")
                yield CallLabel.from_json(data)
            except (json.JSONDecodeError, InputError) as exc:
                raise InputError(f"{path}:{lineno}: {exc}") from None
