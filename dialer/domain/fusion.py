"""Signal fusion: network facts + audio observations + recognised phrases → one decision.

Pure: the caller passes the facts gathered so far and ``now_ms`` (milliseconds since the
originate); :func:`fuse` answers "wait", "hang up (machine)", "hand to an operator (person or
unsure)" or "record (the call is already gone)", always with an :class:`Evidence` carrying a
confidence and a human-readable reason.

Principles (DESIGN.md §3):
- Cheapest, most reliable signals first: a recognised announcement beats a tone, a tone beats a
  bare cause code (carriers reuse causes loosely: cause 1 or 21 often hides a temporary state).
- «Некорректный контакт» classes only on strong evidence: a confident phrase match. Weak evidence
  falls back to the retry path.
- After a real answer, hanging up needs positive machine evidence: a recognised voicemail / IVR /
  announcement phrase, a known recording, a beep, or nothing said at all. A speech pattern alone
  (a long greeting, no pause) never hangs up: when the far end pauses for us, the call goes to an
  operator at once (people never wait in silence); when it never pauses, at ``unsure_max_ms``.
  The policy table is docs/policy.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from dialer.audio.speech import SpeechParams
from dialer.domain.model import CallClass, Evidence, SpeechVerdict, ToneKind
from dialer.domain.q850 import CONGESTION_CAUSES, Cause, DialStatus, cause_name

# Classes that lead to «Некорректный контакт»: demand a confident match before using them.
NOT_WORKING_CLASSES = frozenset(
    {
        CallClass.ANN_NOT_IN_SERVICE,
        CallClass.ANN_BLOCKED,
        CallClass.ANN_WRONG_NUMBER,
        CallClass.ANN_DOES_NOT_EXIST,
        CallClass.ANN_FOR_SALE,
        CallClass.ANN_DISCONNECTED,
        CallClass.ANN_NUMBER_CHANGED,
    }
)
ANNOUNCEMENT_CLASSES = frozenset(c for c in CallClass if c.value.startswith("ann_"))
# What the network and the tones alone decide (cause, DialStatus, busy/congestion, SIT): where an
# announcement nobody could read lands, on the retry path.
NETWORK_CLASSES = frozenset(
    {
        CallClass.BUSY,
        CallClass.CONGESTION,
        CallClass.NO_ANSWER,
        CallClass.NO_CONNECTION,
        CallClass.REJECTED,
        CallClass.UNALLOCATED,
        CallClass.SIT_UNRECOGNISED,
    }
)


class Action(enum.StrEnum):
    WAIT = "wait"
    HANGUP = "hangup"  # machine outcome: we end the call
    HAND_TO_OPERATOR = "hand_to_operator"  # Redirect ;1 to the operator context
    RECORD = "record"  # the call already ended by itself; only record it


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """What AMI told us about the attempt so far."""

    progress: bool = False  # early media reached the analysis context (;1 Up before answer)
    answered: bool = False  # the far end really answered (trunk Up / DialEnd ANSWER)
    ended: bool = False  # every channel of the attempt is gone
    dial_status: str | None = None
    hangup_cause: int | None = None
    originate_reason: int | None = None
    originate_failed: bool = False  # Asterisk refused the originate (no channel at all)
    answered_at_ms: int | None = None
    ended_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AudioFacts:
    """What the tone/VAD analysis observed (dialer.audio)."""

    available: bool = False  # the worker analyses audio for this call (AudioSocket enabled)
    frames_after_answer_ms: int = 0  # audio actually received since the real answer
    tone: ToneKind | None = None
    tone_at_ms: int | None = None
    sit: bool = False
    beep: bool = False
    speech: SpeechVerdict | None = None  # after the real answer only
    speech_reason: str = ""
    speech_at_ms: int | None = None
    speech_ms: int = 0  # speech heard in total (early media and after answer)
    speaking: bool = False  # the far end is talking right now
    quiet_ms: int = 0  # how long the far end has been silent (since its last speech, or the answer)
    stream_ended: bool = False  # the audio stream is over (no more will come while the call lasts)
    noise_dbm0: float = -100.0  # the line's background level (the VAD's noise floor)


@dataclass(frozen=True, slots=True)
class PhraseFacts:
    """The best phrase-catalogue match over the recognised text (dialer.asr)."""

    available: bool = False  # a speech model is loaded and decoding this call
    call_class: CallClass | None = None
    score: float = 0.0
    phrase: str = ""
    text: str = ""
    final: bool = False  # from a final (not partial) result
    asr_confidence: float | None = None  # the engine's confidence in that final result, if it gives one
    agreeing_decodes: int = 0  # decodes with a confidence (Whisper) whose text named this class
    # the recognizer has not yet answered for the speech that just ended (its decode is running)
    awaiting_words: bool = False


@dataclass(frozen=True, slots=True)
class FusionConfig:
    phrase_min_score: float = 0.75  # a match good enough to act on
    not_working_min_score: float = 0.9  # «Некорректный контакт» needs more …
    confident_decode_min: float = 0.6  # … or a decode the engine is this sure of (Whisper), or two agreeing
    early_media_max_ms: int = 45_000  # stop listening to early media; the network decides
    silence_after_answer_ms: int = 6_000  # nothing said after answer → answered silence
    unsure_max_ms: int = 8_000  # answered, talking without a pause for us and no evidence → operator
    # a pause this long after speech means the far end waits for us: the speech pattern's own
    # threshold, so the hand-over comes with the pattern's verdict (dead air ≈ this)
    pause_for_us_ms: int = SpeechParams().person_pause_ms
    # after a monologue too long for a person's greeting, how long past the pause to listen for a
    # voicemail's beep before the operator takes the call: pause + wait stays within the 0.5 s
    # dead-air budget (issue 9), so a long greeter is handed over in time and a voicemail that
    # beeps later reaches an operator (who hangs up) instead of a person waiting in silence
    beep_wait_ms: int = 140
    # … and, while the recognizer is still decoding that monologue, this much longer for its words
    # (a false answer's «абонент недоступен», a voicemail's «оставьте сообщение»): pause + beep wait
    # + this stays under the 2 s dead-air maximum; a decode is CPU time, a real-time budget
    decode_wait_ms: int = 1_000
    audio_wait_ms: int = 1_500  # answered but no audio arrives → operator
    answered_hangup_ms: int = 3_000  # far end hung up this soon after answering, no speech
    # "nobody said anything" is machine evidence on a quiet line only: over a live room's noise a
    # person may be there unheard (street, babble), and the operator decides instead
    silent_line_max_dbm0: float = -50.0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    evidence: Evidence
    notes: tuple[str, ...] = field(default_factory=tuple)


def _ev(
    cls: CallClass, confidence: float, reason: str, net: NetworkFacts, phrase: PhraseFacts | None = None
) -> Evidence:
    return Evidence(
        call_class=cls,
        confidence=round(confidence, 3),
        reason=reason,
        hangup_cause=net.hangup_cause,
        dial_status=net.dial_status,
        answered=net.answered,
        asr_text=phrase.text if phrase is not None and phrase.text else None,
    )


# Causes that contradict "this number does not work": the network itself says the subscriber
# exists (busy, absent, no answer). A grammar-bound recogniser can force a confident-looking
# not-working phrase out of another announcement, so such a match is not trusted then.
_CAUSES_OF_A_WORKING_NUMBER = frozenset(
    {Cause.USER_BUSY, Cause.NO_ANSWER, Cause.NO_USER_RESPONSE, Cause.SUBSCRIBER_ABSENT}
)


def _phrase_class(phrase: PhraseFacts, cfg: FusionConfig, net: NetworkFacts | None = None) -> CallClass | None:
    """The phrase match if it is strong enough for its class, else None.

    «Некорректный контакт» classes need more, and no network cause saying the subscriber exists:
    either a final result matching closely (``not_working_min_score``: a grammar recognizer's text,
    a known recording), or — for an engine that says how sure it is of its free text (Whisper) — a
    final decode it is confident of (``confident_decode_min``) matching well enough
    (``phrase_min_score``), or two decodes that agree on the class."""
    if phrase.call_class is None:
        return None
    if phrase.call_class in NOT_WORKING_CLASSES:
        if not _strong_enough_for_not_working(phrase, cfg):
            return None
        if net is not None and net.hangup_cause in _CAUSES_OF_A_WORKING_NUMBER:
            return None
        return phrase.call_class
    return phrase.call_class if phrase.score >= cfg.phrase_min_score else None


def _strong_enough_for_not_working(phrase: PhraseFacts, cfg: FusionConfig) -> bool:
    if phrase.final and phrase.score >= cfg.not_working_min_score:
        return True
    if phrase.score < cfg.phrase_min_score:
        return False
    confident = phrase.final and phrase.asr_confidence is not None and phrase.asr_confidence >= cfg.confident_decode_min
    return confident or phrase.agreeing_decodes >= 2


def class_from_network(net: NetworkFacts) -> tuple[CallClass, float, str]:
    """Classify an unanswered attempt from the cause code and DialStatus alone."""
    cause = net.hangup_cause
    status = net.dial_status
    where = f"cause {cause_name(cause)}" + (f", DialStatus {status}" if status else "")
    if net.originate_failed:
        return CallClass.ORIGINATE_FAILED, 0.9, f"originate failed ({where})"
    if cause == Cause.USER_BUSY or status == DialStatus.BUSY:
        return CallClass.BUSY, 0.9, f"busy: {where}"
    if cause in CONGESTION_CAUSES or status == DialStatus.CONGESTION:
        return CallClass.CONGESTION, 0.85, f"congestion: {where}"
    if cause in (Cause.NO_ANSWER, Cause.NO_USER_RESPONSE) or (
        status == DialStatus.NOANSWER and cause in (None, Cause.NOT_DEFINED, Cause.NORMAL_CLEARING)
    ):
        return CallClass.NO_ANSWER, 0.9, f"no answer: {where}"
    if cause == Cause.CALL_REJECTED:
        return CallClass.REJECTED, 0.7, f"rejected: {where}"
    if cause in (Cause.UNALLOCATED, Cause.NO_ROUTE_DESTINATION, Cause.INVALID_NUMBER_FORMAT):
        # Weak alone: carriers send cause 1 for switched-off phones too. Retry path.
        return CallClass.UNALLOCATED, 0.6, f"unallocated/invalid per network: {where}"
    if cause == Cause.NUMBER_CHANGED:
        return CallClass.UNALLOCATED, 0.6, f"number changed per network: {where}"
    if cause == Cause.SUBSCRIBER_ABSENT:
        return CallClass.NO_CONNECTION, 0.7, f"subscriber absent: {where}"
    return CallClass.NO_CONNECTION, 0.5, f"no connection: {where}"


def fuse(
    net: NetworkFacts,
    audio: AudioFacts,
    phrase: PhraseFacts,
    now_ms: int,
    cfg: FusionConfig | None = None,
) -> Decision:
    cfg = cfg or FusionConfig()
    strong = _phrase_class(phrase, cfg, net)
    action_if_live = Action.RECORD if net.ended else Action.HANGUP

    if net.answered:
        return _fuse_answered(net, audio, phrase, strong, now_ms, cfg)

    # ---- not answered (yet): early media, tones, network causes --------------------------------
    if strong is not None and strong in ANNOUNCEMENT_CLASSES:
        return Decision(
            action_if_live,
            _ev(strong, phrase.score, f"announcement «{phrase.phrase}» recognised in early media", net, phrase),
        )
    if audio.tone is ToneKind.BUSY:
        return Decision(action_if_live, _ev(CallClass.BUSY, 0.92, "busy tone in early media", net))
    if audio.tone is ToneKind.CONGESTION:
        return Decision(action_if_live, _ev(CallClass.CONGESTION, 0.9, "congestion tone in early media", net))
    if not net.ended:
        if net.progress and now_ms >= cfg.early_media_max_ms:
            cls = CallClass.SIT_UNRECOGNISED if audio.sit else CallClass.NO_CONNECTION
            why = "SIT tone" if audio.sit else "early media"
            return Decision(
                Action.HANGUP,
                _ev(cls, 0.5, f"{why} for {now_ms / 1000:.0f} s without a recognised announcement", net),
            )
        return Decision(Action.WAIT, _ev(CallClass.NO_CONNECTION, 0.0, "waiting", net))

    # The network ended the call before any answer.
    cls, conf, why = class_from_network(net)
    if audio.sit and cls in (CallClass.UNALLOCATED, CallClass.REJECTED, CallClass.NO_CONNECTION):
        # SIT says "a network announcement was played"; without the words it stays on the retry path.
        return Decision(
            Action.RECORD,
            _ev(CallClass.SIT_UNRECOGNISED, 0.7, f"SIT tone, announcement not recognised; {why}", net, phrase),
        )
    if phrase.call_class is not None and strong is None:
        why += f"; weak phrase match «{phrase.phrase}» ({phrase.score:.2f}) not trusted"
    elif audio.speech_ms > 0 and not phrase.available:
        why += "; early-media speech heard but no speech model to read it"
    return Decision(Action.RECORD, _ev(cls, conf, why, net, phrase))


def _fuse_answered(
    net: NetworkFacts,
    audio: AudioFacts,
    phrase: PhraseFacts,
    strong: CallClass | None,
    now_ms: int,
    cfg: FusionConfig,
) -> Decision:
    since_answer = now_ms - (net.answered_at_ms if net.answered_at_ms is not None else now_ms)
    if (d := _machine_or_person(net, audio, phrase, strong)) is not None:
        return d
    if net.ended:
        return _ended_after_answer(net, audio, phrase, since_answer, cfg)
    if (d := _no_audio_to_judge(net, audio, since_answer, cfg)) is not None:
        return d
    if (d := _silent_line(net, audio, cfg)) is not None:
        return d
    return _speech_without_machine_evidence(net, audio, phrase, since_answer, cfg)


def _machine_or_person(
    net: NetworkFacts, audio: AudioFacts, phrase: PhraseFacts, strong: CallClass | None
) -> Decision | None:
    """Positive evidence after the answer: a machine's (a recognised announcement / IVR /
    voicemail phrase or a known recording after a (false) answer, a fax tone, a beep after
    speech) or a person's."""
    live = Action.RECORD if net.ended else Action.HANGUP
    if strong is not None and strong is not CallClass.PERSON:
        return Decision(live, _ev(strong, phrase.score, f"answered; «{phrase.phrase}» recognised", net, phrase))
    if audio.tone is ToneKind.FAX:
        return Decision(live, _ev(CallClass.FAX, 0.9, "answered by a fax machine (2100 Hz answer tone)", net))
    if audio.beep:
        why = f"beep after the greeting ({audio.speech_reason})" if audio.speech_reason else "beep after the greeting"
        return Decision(live, _ev(CallClass.VOICEMAIL, 0.85, f"answered; {why}", net))
    if audio.speech is SpeechVerdict.PERSON or strong is CallClass.PERSON:
        why = audio.speech_reason or f"greeting «{phrase.phrase}»"
        if net.ended:
            return Decision(Action.RECORD, _ev(CallClass.DROPPED, 0.7, f"person spoke, then hung up ({why})", net))
        return Decision(Action.HAND_TO_OPERATOR, _ev(CallClass.PERSON, 0.85, f"person: {why}", net, phrase))
    return None


def _ended_after_answer(
    net: NetworkFacts, audio: AudioFacts, phrase: PhraseFacts, since_answer: int, cfg: FusionConfig
) -> Decision:
    if audio.speech_ms == 0 and since_answer <= cfg.answered_hangup_ms:
        return Decision(Action.RECORD, _ev(CallClass.ANSWERED_HANGUP, 0.8, "answered and hung up at once", net))
    if audio.speech_ms == 0:
        return Decision(Action.RECORD, _ev(CallClass.ANSWERED_SILENCE, 0.7, "answered, silent, then hung up", net))
    return Decision(Action.RECORD, _ev(CallClass.DROPPED, 0.6, "answered, spoke, call dropped", net, phrase))


def _no_audio_to_judge(net: NetworkFacts, audio: AudioFacts, since_answer: int, cfg: FusionConfig) -> Decision | None:
    """No analysis, no audio, or the stream ended undecided: the operator decides."""
    if not audio.available:
        # Issue 3's fallback: no audio analysis → every answered call goes to a person.
        return Decision(
            Action.HAND_TO_OPERATOR,
            _ev(CallClass.UNSURE_ANSWERED, 0.5, "answered; no audio analysis available, operator decides", net),
        )
    if audio.frames_after_answer_ms == 0 and since_answer >= cfg.audio_wait_ms:
        return Decision(
            Action.HAND_TO_OPERATOR,
            _ev(CallClass.UNSURE_ANSWERED, 0.5, "answered; no audio reached the worker, operator decides", net),
        )
    if audio.stream_ended:
        return Decision(
            Action.HAND_TO_OPERATOR,
            _ev(CallClass.UNSURE_ANSWERED, 0.5, "answered; the audio stream ended undecided, operator decides", net),
        )
    return None


def _silent_line(net: NetworkFacts, audio: AudioFacts, cfg: FusionConfig) -> Decision | None:
    if not (
        audio.speech is SpeechVerdict.SILENCE
        or (audio.speech_ms == 0 and audio.frames_after_answer_ms >= cfg.silence_after_answer_ms)
    ):
        return None
    heard_s = audio.frames_after_answer_ms / 1000
    if audio.noise_dbm0 > cfg.silent_line_max_dbm0:
        why = f"no speech heard in {heard_s:.1f} s over background noise at {audio.noise_dbm0:.0f} dBm0"
        return Decision(Action.HAND_TO_OPERATOR, _ev(CallClass.UNSURE_ANSWERED, 0.4, f"answered; {why}", net))
    return Decision(
        Action.HANGUP,
        _ev(CallClass.ANSWERED_SILENCE, 0.75, f"answered, no speech in {heard_s:.1f} s of audio", net),
    )


def _speech_without_machine_evidence(
    net: NetworkFacts, audio: AudioFacts, phrase: PhraseFacts, since_answer: int, cfg: FusionConfig
) -> Decision:
    # Speech without machine evidence is never hung up on: at the first pause for us the call goes
    # to an operator (a voicemail may still beep, but a person must not wait in silence), and a far
    # end that never pauses goes to one at unsure_max_ms.
    spoke = audio.speech in (SpeechVerdict.UNSURE, SpeechVerdict.VOICEMAIL)
    pause_ms = cfg.pause_for_us_ms
    if audio.speech is SpeechVerdict.VOICEMAIL:
        pause_ms += cfg.beep_wait_ms + (cfg.decode_wait_ms if phrase.awaiting_words else 0)
    paused = spoke and not audio.speaking and audio.quiet_ms >= pause_ms
    if paused or (audio.speaking and since_answer >= cfg.unsure_max_ms):
        why = audio.speech_reason or "speech pattern not conclusive"
        when = "at a pause for us" if paused else f"still talking after {since_answer / 1000:.1f} s"
        if paused and audio.speech is SpeechVerdict.VOICEMAIL:
            when += f" (no beep in {audio.quiet_ms / 1000:.1f} s)"
        return Decision(
            Action.HAND_TO_OPERATOR,
            _ev(CallClass.UNSURE_ANSWERED, 0.4, f"answered; no machine evidence {when}: {why}", net),
        )
    return Decision(Action.WAIT, _ev(CallClass.UNSURE_ANSWERED, 0.0, "analysing answered audio", net))
