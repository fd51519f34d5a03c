"""The call session's vocabulary: every input it takes and every command it gives.

One set of classes for every driver: the AMI correlator (:mod:`dialer.ami.signals`) emits the
network inputs directly, the AudioSocket sink the audio ones, the ASR service the recognizer
ones; the worker adds ticks and stop requests; replay and ``dialer eval`` feed the same classes
from a recording or a labelled corpus. Times are never inside an input: the driver passes
``now_ms`` (milliseconds since the originate) with each one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dialer.asr.port import Hypothesis
from dialer.domain.model import Evidence

# ---- network facts (AMI) ------------------------------------------------------------------------


class ChannelRole(enum.StrEnum):
    """Which channel of an attempt an AMI event is about (the Local channel contract)."""

    LOCAL1 = "local1"  # Local ;1: the originated half, runs the analysis/operator contexts
    LOCAL2 = "local2"  # Local ;2: runs Dial(<trunk>)
    TRUNK = "trunk"  # the far end, dialled by ;2
    OPERATOR = "operator"  # dialled by ;1 from the operator Queue
    LINKED = "linked"  # linked to the attempt, role not known yet


@dataclass(frozen=True, slots=True)
class Ringing:
    """The far end is ringing (trunk Ringing or ;2 DialState RINGING)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """;1 went Up before the far end answered: early media flows into the analysis context."""


@dataclass(frozen=True, slots=True)
class Answered:
    """The far end really answered (trunk Up, ;2 Up, ;2→trunk DialEnd ANSWER, or a reconcile that
    found the trunk leg Up while AMI was disconnected)."""


@dataclass(frozen=True, slots=True)
class DialEnded:
    dial_status: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """One channel of the attempt hung up."""

    role: ChannelRole
    cause: int | None
    cause_txt: str = ""
    channel: str = ""
    uniqueid: str = ""


@dataclass(frozen=True, slots=True)
class OriginateResult:
    reason: int | None
    response: str  # Success | Failure

    @property
    def success(self) -> bool:
        return self.response.lower() == "success"


@dataclass(frozen=True, slots=True)
class QueueJoined:
    """After the Redirect the call joined the operators' queue (QueueCallerJoin)."""

    queue: str = ""
    position: int | None = None


@dataclass(frozen=True, slots=True)
class OperatorAnswered:
    """An operator answered the handed-over call (AgentConnect, or the operator context's Dial
    from ;1 ending ANSWER): the hand-over is confirmed."""

    operator: str = ""


@dataclass(frozen=True, slots=True)
class QueueAbandoned:
    """The person hung up while waiting in the operators' queue (QueueCallerAbandon)."""

    queue: str = ""
    hold_s: int | None = None


@dataclass(frozen=True, slots=True)
class RedirectFailed:
    """The worker could not move the call to the operators (AMI error after its retries)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Gone:
    """Final: every channel of the attempt has hung up (or the driver forced the end)."""

    cause: int | None = None  # the meaningful cause (the trunk's first)
    dial_status: str | None = None
    forced: bool = False  # forced before Asterisk reported everything (reconnect, no channel)


@dataclass(frozen=True, slots=True)
class OriginateRejected:
    """The Originate action itself failed (Response: Error, timeout, server down)."""

    reason: str


# ---- audio (AudioSocket) and the recognizer ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One payload of slin 8 kHz as received; ``index`` numbers its first 20 ms slot from the
    start of the stream (a payload longer than one slot covers several)."""

    pcm: bytes
    index: int


@dataclass(frozen=True, slots=True)
class AudioEnded:
    """The audio stream is over (Asterisk closed it, or it broke)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Recognized:
    """A hypothesis of the call's recognizer (decoded off the loop live, in line in replay)."""

    hypothesis: Hypothesis


@dataclass(frozen=True, slots=True)
class RecognizerFlushed:
    """The recognizer has given everything it will give (its flush returned, or it failed)."""


# ---- the driver ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """A deadline from :meth:`CallSession.next_deadline_ms` passed."""


@dataclass(frozen=True, slots=True)
class StopRequested:
    """The worker is shutting down and the drain deadline passed."""


NetworkInput = (
    Ringing
    | Progress
    | Answered
    | DialEnded
    | HungUp
    | OriginateResult
    | QueueJoined
    | OperatorAnswered
    | QueueAbandoned
    | RedirectFailed
    | Gone
    | OriginateRejected
)
Input = NetworkInput | AudioFrame | AudioEnded | Recognized | RecognizerFlushed | Tick | StopRequested

NETWORK_INPUTS: tuple[type, ...] = (
    Ringing,
    Progress,
    Answered,
    DialEnded,
    HungUp,
    OriginateResult,
    QueueJoined,
    OperatorAnswered,
    QueueAbandoned,
    RedirectFailed,
    Gone,
    OriginateRejected,
)

# ---- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recognize:
    """Hand this frame to the recognizer (``voiced``: the session's voice-activity flag)."""

    pcm: bytes
    voiced: bool


@dataclass(frozen=True, slots=True)
class FlushRecognizer:
    """The audio is over: decode what is buffered and report :class:`RecognizerFlushed`."""


@dataclass(frozen=True, slots=True)
class CloseRecognizer:
    """No more audio will be decoded for this call: free the recognizer."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """A machine: end the call (AMI Hangup)."""

    evidence: Evidence


@dataclass(frozen=True, slots=True)
class HandToOperator:
    """A person (or unsure after an answer): move the call to the operators (AMI Redirect). The
    verdict is recorded once an operator answers, or the person is lost on the way."""

    evidence: Evidence


@dataclass(frozen=True, slots=True)
class SendDigits:
    """An organisation's IVR answered a contact with a known extension: dial it (AMI PlayDTMF) —
    the session listens again to what answers next."""

    digits: str


@dataclass(frozen=True, slots=True)
class Record:
    """The attempt's verdict is final: store it. Exactly one per call."""

    evidence: Evidence


Command = Recognize | FlushRecognizer | CloseRecognizer | SendDigits | Hangup | HandToOperator | Record
