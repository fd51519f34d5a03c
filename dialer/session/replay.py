"""Drive a :class:`CallSession` through a timeline of inputs, in line: the replay of a recorded
call (``dialer replay``) and of a labelled corpus call (``dialer eval``).

The driver does what the worker does, minus the waiting: it feeds every input at its time, feeds
a :class:`Tick` whenever the session's next deadline comes before the next input, and executes the
session's recognizer commands on a :class:`~dialer.asr.port.Recognizer` in line (each hypothesis
goes back in at the same instant). A recording made with a recognizer carries the hypotheses the
live recognizer gave, with their times; replayed without an engine those are fed as recorded, so
the replay reproduces the live decision. Given an engine, the audio is decoded again.

Without a real network behind it (a corpus call), ``network_confirms`` makes the driver play the
network's part: a Hangup is confirmed at once (every channel gone) and a hand-over is answered at
once by an operator. A recording carries the real confirmations.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Any

from dialer.ami.signals import Correlator
from dialer.asr.port import Hypothesis, Recognizer, RecognizerEngine
from dialer.audio.frames import FRAME_MS, frame_bytes
from dialer.corpus.labels import NetworkScript
from dialer.domain.fusion import Action
from dialer.domain.model import Evidence
from dialer.domain.q850 import DialStatus
from dialer.session.inputs import (
    Answered,
    AudioEnded,
    AudioFrame,
    ChannelRole,
    CloseRecognizer,
    Command,
    DialEnded,
    FlushRecognizer,
    Gone,
    HandToOperator,
    Hangup,
    HungUp,
    Input,
    OperatorAnswered,
    OriginateRejected,
    Progress,
    Recognize,
    Recognized,
    RecognizerFlushed,
    Record,
    RedirectFailed,
    SendDigits,
    StopRequested,
    Tick,
)
from dialer.session.recording import Recording
from dialer.session.session import CallPhase, CallSession, SessionSetup

# Inputs at the same millisecond: audio first (a frame that ends at t was heard by t), then the rest.
AUDIO_FIRST, OTHERS_NEXT = 0, 1
SILENT_TAIL_MS = 60_000  # a corpus call whose audio runs out with nobody hanging up: the line stays open


@dataclass(frozen=True, slots=True)
class Timed:
    at_ms: int
    input: Input


@dataclass
class Replayed:
    """What the session did with a timeline."""

    session: CallSession
    action: Action | None = None  # the action of the decision (None: undecided)
    decided_at_ms: int | None = None
    evidence: Evidence | None = None  # what was recorded (None: nothing was, the timeline ran out)
    commands: list[tuple[int, Command]] = field(default_factory=list)  # hang-ups, hand-overs, records
    end_ms: int = 0  # the time of the last input or tick fed

    @property
    def decided(self) -> bool:
        return self.action is not None


def drive(
    session: CallSession,
    timeline: Iterable[Timed],
    *,
    recognizer: Recognizer | None = None,
    network_confirms: bool = False,
    derive_ticks: bool = True,
) -> Replayed:
    """Feed ``timeline`` (sorted by time) and the ticks the session asks for; return what it did.

    ``derive_ticks=False``: the timeline carries the ticks (a recording replayed with the settings
    it was made with); ticks are derived only once it is exhausted. Stops once the verdict is
    recorded and the call is over (or with the operators), or when the timeline is exhausted and
    the session asks for no more ticks."""
    driver = _Driver(session, timeline, recognizer, network_confirms=network_confirms, derive_ticks=derive_ticks)
    while not _over(session) and driver.step():
        pass
    if recognizer is not None and session.phase is not CallPhase.ENDED and not session.recorded:
        recognizer.close()
    return driver.result


RecognizerCommand = Recognize | FlushRecognizer | CloseRecognizer


class _Driver:
    """One :func:`drive`: the timeline's next input, the inputs the driver made (the network's
    confirmations), and what the session did so far."""

    def __init__(
        self,
        session: CallSession,
        timeline: Iterable[Timed],
        recognizer: Recognizer | None,
        *,
        network_confirms: bool,
        derive_ticks: bool,
    ) -> None:
        self.session = session
        self.recognizer = recognizer
        self.network_confirms = network_confirms
        self.derive_ticks = derive_ticks
        self.result = Replayed(session)
        self.pending: list[tuple[int, int, int, Input]] = []  # (at, priority, seq, input) — inputs the driver made
        self.seq = count()
        self.items = iter(timeline)
        self.nxt = next(self.items, None)

    def step(self) -> bool:
        """Feed the soonest of the session's deadline (as a tick), an input the driver made and the
        timeline's next input; False when none is left."""
        nxt, pending = self.nxt, self.pending
        deadline = self.session.next_deadline_ms() if self.derive_ticks or nxt is None else None
        candidates: list[int] = []
        if nxt is not None:
            candidates.append(nxt.at_ms)
        if pending:
            candidates.append(pending[0][0])
        if not candidates and deadline is None:
            return False
        soonest = min(candidates) if candidates else None
        if deadline is not None and (soonest is None or deadline <= soonest):
            self.feed(Tick(), deadline)
        elif pending and (nxt is None or pending[0][0] <= nxt.at_ms):
            at, _prio, _n, inp = heapq.heappop(pending)
            self.feed(inp, at)
        else:
            assert nxt is not None
            self.feed(nxt.input, nxt.at_ms)
            self.nxt = next(self.items, None)
        return True

    def feed(self, inp: Input, at: int) -> None:
        self.result.end_ms = at
        queue: list[Input] = [inp]
        while queue:
            for cmd in self.session.feed(queue.pop(0), at):
                queue.extend(self._execute(cmd, at))

    def _execute(self, cmd: Command, at: int) -> list[Input]:
        """Carry out ``cmd``; the inputs it gives back at once (hypotheses)."""
        match cmd:
            case Recognize() | FlushRecognizer() | CloseRecognizer():
                return self._recognize(cmd)
            case Hangup():
                self._act(at, cmd, Gone(self.session.net.hangup_cause) if self.network_confirms else None)
            case HandToOperator():
                self._act(at, cmd, OperatorAnswered("simulated") if self.network_confirms else None)
            case SendDigits():
                self.result.commands.append((at, cmd))
            case Record(evidence=ev):
                self._act(at, cmd, None)
                self.result.evidence = ev
        return []

    def _recognize(self, cmd: RecognizerCommand) -> list[Input]:
        rec = self.recognizer
        if rec is None:
            return []  # a recording carries what the live recognizer gave, at its time
        match cmd:
            case Recognize(pcm=pcm, voiced=voiced):
                return [Recognized(h) for h in rec.accept(pcm, voiced)]
            case FlushRecognizer():
                return [*(Recognized(h) for h in rec.flush()), RecognizerFlushed()]
        rec.close()
        return []

    def _act(self, at: int, cmd: Command, confirmation: Input | None) -> None:
        """A hang-up, hand-over or record: noted, the decision taken from the session, and the
        network's ``confirmation`` (if it plays the network's part) queued for the same instant."""
        self.result.commands.append((at, cmd))
        self._decided(at)
        if confirmation is not None:
            heapq.heappush(self.pending, (at, OTHERS_NEXT, next(self.seq), confirmation))

    def _decided(self, at: int) -> None:
        result, session = self.result, self.session
        if result.action is None and session.decision is not None:
            result.action = session.decision.action
            result.decided_at_ms = session.decided_at_ms if session.decided_at_ms is not None else at


def _over(session: CallSession) -> bool:
    return session.recorded and session.phase in (CallPhase.ENDED, CallPhase.WITH_OPERATOR)


# --- timelines ---------------------------------------------------------------------------------------


def corpus_timeline(pcm: bytes, script: NetworkScript, sample_rate: int) -> Iterator[Timed]:
    """A labelled corpus call as the worker would see it: 20 ms frames arriving as they end, and
    the network script's progress / answer / hang-up as the AMI correlator would report them.

    The audio starts at the originate (the corpus' convention); frames the network's hang-up cut
    off are not heard. When the recording runs out and nobody hung up, the line stays open and
    silent (the far end waits): silent frames follow for ``SILENT_TAIL_MS``, then the stream ends
    (:class:`AudioEnded`)."""
    per = frame_bytes(sample_rate)
    n_slots = -(-len(pcm) // per)
    hangup = script.hangup_ms
    events: list[tuple[int, int, Input]] = []
    for i in range(n_slots):
        arrival = (i + 1) * FRAME_MS
        if hangup is not None and arrival > hangup:
            break
        events.append((arrival, AUDIO_FIRST, AudioFrame(pcm[i * per : (i + 1) * per], i)))
    if script.progress_ms is not None and (script.answered_ms is None or script.progress_ms < script.answered_ms):
        events.append((script.progress_ms, OTHERS_NEXT, Progress()))
    if script.answered_ms is not None and (hangup is None or script.answered_ms < hangup):
        events.append((script.answered_ms, OTHERS_NEXT, DialEnded(DialStatus.ANSWER.value)))
        events.append((script.answered_ms, OTHERS_NEXT, Answered()))
    if hangup is not None:
        status = script.dial_status
        if status and script.answered_ms is None:
            events.append((hangup, OTHERS_NEXT, DialEnded(status)))
        events.append((hangup, OTHERS_NEXT, HungUp(ChannelRole.TRUNK, script.cause)))
        events.append((hangup, OTHERS_NEXT, Gone(script.cause, status)))
        events.append((hangup, OTHERS_NEXT, AudioEnded("hung up")))
    events.sort(key=lambda e: (e[0], e[1]))  # stable: same-time inputs keep their order
    yield from (Timed(at, inp) for at, _prio, inp in events)
    if hangup is None:
        silence = bytes(per)
        tail = SILENT_TAIL_MS // FRAME_MS
        for i in range(n_slots, n_slots + tail):
            yield Timed((i + 1) * FRAME_MS, AudioFrame(silence, i))
        yield Timed((n_slots + tail) * FRAME_MS, AudioEnded("end of the recorded call"))


def merge(*timelines: Iterable[Timed]) -> Iterator[Timed]:
    """Timelines merged by time (stable)."""
    return heapq.merge(*timelines, key=lambda t: t.at_ms)


def recording_timeline(rec: Recording) -> list[Timed]:
    """A recorded call's inputs as the live session got them: AMI events through a fresh
    correlator, frames, recognizer hypotheses (as the live recognizer gave them), and the inputs
    the worker made itself."""
    corr = Correlator()
    corr.track(rec.attempt_id, 0.0)
    out: list[Timed] = []
    for e in rec.entries:
        d = e.data
        match e.kind:
            case "ami":
                routed = corr.feed(d["h"], e.t_ms / 1000)
                if routed is not None and routed.attempt_id == rec.attempt_id:
                    out += [Timed(e.t_ms, i) for i in routed.inputs]
            case "frame":
                out.append(Timed(e.t_ms, AudioFrame(e.pcm, int(d["i"]))))
            case "asr":
                conf = d.get("conf")
                hyp = Hypothesis(str(d["text"]), bool(d["final"]), None if conf is None else float(conf),
                                 int(d.get("audio_ms", 0)))  # fmt: skip
                out.append(Timed(e.t_ms, Recognized(hyp)))
            case "flushed":
                out.append(Timed(e.t_ms, RecognizerFlushed()))
            case "tick":
                out.append(Timed(e.t_ms, Tick()))
            case "audio_end":
                out.append(Timed(e.t_ms, AudioEnded(str(d.get("reason", "")))))
            case "in":
                made = worker_input(d)
                if made is not None:
                    out.append(Timed(e.t_ms, made))
    return out


def worker_input(d: Mapping[str, Any]) -> Input | None:
    """An input the worker made itself, from its recorded form (see dialer.session.recording)."""
    match d.get("type"):
        case "answered":
            return Answered()
        case "gone":
            cause, status = d.get("cause"), d.get("dial_status")
            return Gone(None if cause is None else int(cause), None if status is None else str(status),
                        bool(d.get("forced", False)))  # fmt: skip
        case "originate_rejected":
            return OriginateRejected(str(d.get("reason", "")))
        case "stop":
            return StopRequested()
        case "redirect_failed":
            return RedirectFailed(str(d.get("reason", "")))
    return None


def replay_recording(rec: Recording, setup: SessionSetup, *, engine: RecognizerEngine | None = None) -> Replayed:
    """Replay a recorded call through a new session with ``setup``. Without ``engine`` the
    recognizer's hypotheses are fed as the live recognizer gave them; with one, the audio is
    decoded again (and the recorded hypotheses are left out)."""
    # a simulator's recording: its real-time budgets were stretched as the live worker's were
    setup = replace(setup, config=setup.config.stretched(rec.time_scale))
    decoding = engine is not None or bool(rec.meta.get("decoding"))
    extension = rec.meta.get("extension")
    session = setup.session(
        rec.attempt_id,
        decoding=decoding,
        audio=bool(rec.meta.get("audio", True)),
        extension=str(extension) if extension else None,
    )
    timeline = recording_timeline(rec)
    if engine is not None:
        timeline = [t for t in timeline if not isinstance(t.input, Recognized | RecognizerFlushed)]
    # With the settings it was recorded with, the live timer's ticks (a little late, as timers
    # are) reproduce the live decision exactly; with other settings the deadlines move: derive them.
    recorded_settings = json.loads(json.dumps(setup.describe(), default=str)) == rec.meta.get("settings")
    if not recorded_settings:
        timeline = [t for t in timeline if not isinstance(t.input, Tick)]
    recognizer = engine.open() if engine is not None else None
    return drive(session, timeline, recognizer=recognizer, derive_ticks=not recorded_settings)
