"""Which kind of signal decided an attempt, from what is stored with it (class, reason, answered).

The session's evidence carries a human-readable reason, not a signal field; ops metrics and the
campaign report group attempts by this coarse signal instead. One function, so both group alike.
"""

from __future__ import annotations

from dialer.domain.model import CallClass

SIGNALS = (
    "before_dialling",  # settled from the card: no number, invalid, do-not-call, own number
    "phrase",  # a recognised announcement or greeting (speech recognition or a known recording)
    "tone",  # busy / congestion / SIT / fax / beep
    "speech_pattern",  # how the far end spoke (a person's short hello, a machine's monologue)
    "silence",  # nothing said after the answer
    "network",  # hangup cause, dial status, no answer
    "timeout",  # no verdict in time: forced
    "worker",  # our own failure or stop (originate failed, aborted)
)

_BEFORE_DIALLING = frozenset(
    {CallClass.NO_NUMBER, CallClass.INVALID_NUMBER, CallClass.DO_NOT_CALL, CallClass.OWN_NUMBER}
)
_WORKER = frozenset({CallClass.ORIGINATE_FAILED, CallClass.ABORTED})
_TONE_WORDS = ("tone", "beep", "fax")
_TIMEOUT_WORDS = ("no decision after", "no verdict after", "without a recognised announcement")
_SILENCE_WORDS = ("silent", "no speech")


def deciding_signal(call_class: CallClass | str, reason: str | None, answered: bool = False) -> str:
    """One of :data:`SIGNALS`."""
    try:
        cls = CallClass(call_class)
    except ValueError:
        return "network"
    text = (reason or "").lower()
    if cls in _BEFORE_DIALLING:
        return "before_dialling"
    if cls in _WORKER:
        return "worker"
    if any(w in text for w in _TIMEOUT_WORDS):
        return "timeout"
    if "«" in text:
        return "phrase"
    if any(w in text for w in _TONE_WORDS):
        return "tone"
    if any(w in text for w in _SILENCE_WORDS):
        return "silence"
    if answered or "person" in text or "spoke" in text:
        return "speech_pattern"
    return "network"


def decision_from_audio_ms(decided_at_ms: int | None, audio_offset_ms: int | None) -> int | None:
    """Decision latency from the start of the call's audio (the stream's first frame) to the
    decision, both on the call's clock: what an attempt stores as ``decision_ms`` and the metrics'
    ``dialer_decision_latency_seconds{since="audio_start"}`` observes. None without audio or decision."""
    if decided_at_ms is None or audio_offset_ms is None:
        return None
    return max(0, decided_at_ms - audio_offset_ms)
