"""Re-recording the AMI transcripts the simulator is checked against, on the real Asterisk.

Two sets, each call on its own private pbx (device states such as ``IAX2/carrier`` aggregate
every call of an instance, so concurrent calls on one instance would show in each other's
transcripts), all recorded at once:

- ``local/`` and ``audiosocket/``: the 15 scenarios of shared/reference/ami/, with the rig of its
  README (``Local/<n>@rig-dial/n``, ``EarlyMedia: true``, ``;1`` in ``rig-hold`` or, for the four
  AudioSocket ones, ``rig-analyze``, with a ``*.frames.log`` of what the AudioSocket server got),
  except the Originate ``Timeout``: 35 s instead of 30, so the no-answer call is always ended by
  the Dial's own 30 s ring timeout (at 30 s both race, and which one wins depends on the load);
- ``handover/``: the deploy/asterisk contract as the worker drives it (originate into
  ``dialer-analyse``, AudioSocket, ``Redirect`` to ``dialer-operator``) — a person handed over and
  answered by an operator, a person who hangs up while waiting in the queue, a Redirect when the
  queue is missing, a Redirect to a missing operator context.

``python -m tests.asterisk.transcripts [OUT_DIR]`` (or the test suite with
``DIALER_RERECORD_TRANSCRIPTS=1``) writes them to ``tests/asterisk/transcripts/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from dialer.ami.protocol import AmiMessage
from dialer.sim import SCENARIOS
from tests.sim.fixtures import RIG_ORIGINATE_TIMEOUT_MS, RecordingAudioSocketServer

from .network import Carrier, Pbx, make_carrier, make_pbx
from .recorder import Recorder, Recording, variables
from .scenarios import ROUTES, number_of

TRANSCRIPTS_DIR = Path(__file__).resolve().parent / "transcripts"
AUDIOSOCKET_STEMS = (
    "04-early-announcement-cause20",
    "05-early-sit-announcement-cause1",
    "06-person-answers",
    "13-early-busy-announcement-cause17",
)
CALL_TIMEOUT_S = 90.0
GREETING_S = {"person_short": 2.2, "person_leaves_queue": 1.8}  # answer → Redirect, per scenario


@dataclass
class Recorded:
    """One recorded call: the transcript and, for AudioSocket ones, the frames log."""

    path: str  # relative to the transcripts folder, e.g. local/01-busy.txt
    recording: Recording
    frames_log: str | None = None

    def write(self, base: Path) -> list[Path]:
        out = base / self.path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.recording.text(), encoding="utf-8")
        written = [out]
        if self.frames_log is not None:
            frames = out.with_name(out.name.replace(".ami.txt", ".frames.log"))
            frames.write_text(self.frames_log, encoding="utf-8")
            written.append(frames)
        return written


async def _recorder(pbx: Pbx) -> Recorder:
    return await Recorder.connect(pbx.ami_port, "kit", pbx.instance.kit_secret)


def _frames_log(server: object) -> str:
    assert isinstance(server, RecordingAudioSocketServer)
    if len(server.connections) != 1:
        raise AssertionError(f"expected one AudioSocket connection, got {len(server.connections)}")
    lines = []
    for r in server.connections[0].log:
        lines.append(f"{r.t:.3f} closed" if r.kind is None else f"{r.t:.3f} kind=0x{int(r.kind):02x} len={r.length}")
    return "\n".join(lines) + "\n"


def rig_call(stem: str, number: str, context: str) -> Callable[[Pbx], Awaitable[Recording]]:
    """The reference rig's call: Originate as the module docstring describes."""

    async def run(pbx: Pbx) -> Recording:
        rec = await _recorder(pbx)
        try:
            channel_id = str(uuid.uuid4())
            rec.mark_originate()
            reply = await rec.action(
                "Originate",
                ("Channel", f"Local/{number}@rig-dial/n"),
                ("Context", context),
                ("Exten", "s"),
                ("Priority", "1"),
                ("Async", "true"),
                ("EarlyMedia", "true"),
                ("ChannelId", channel_id),
                ("Timeout", str(RIG_ORIGINATE_TIMEOUT_MS)),
                ("CallerID", "dialer <74950000000>"),
                ("Variable", "DIALER_ATTEMPT=1"),
                action_id="orig-1",
            )
            if reply.response != "Success":
                raise AssertionError(f"{stem}: Originate refused: {reply.to_dict()}")
            await rec.wait_over(channel_id, CALL_TIMEOUT_S)
            return rec.recording()
        finally:
            await rec.close()

    return run


def contract_originate(number: str, channel_id: str, audiosocket: str, ring_s: int = 30) -> list[tuple[str, str]]:
    """The Originate the worker sends (dialer.ami.client.AmiClient.originate), field by field."""
    return [
        ("Channel", f"Local/{number}@dialer-dial/n"),
        ("Context", "dialer-analyse"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", str((ring_s + 5) * 1000)),
        ("ChannelId", channel_id),
        ("Async", "true"),
        ("EarlyMedia", "true"),
        *variables(
            [
                ("DIALER_ATTEMPT_ID", channel_id),
                ("DIALER_DIALSTRING", f"IAX2/carrier/{number}"),
                ("DIALER_RING_S", str(ring_s)),
                ("DIALER_AUDIOSOCKET", audiosocket),
                ("DIALER_ATTEMPT", "1"),
            ]
        ),
        ("CallerID", "Dialer <74950000000>"),
    ]


def handover_call(scenario: str, operator_context: str) -> Callable[[Pbx, str], Awaitable[Recording]]:
    """The worker's side of a hand-over: originate, wait for the answer and the greeting, Redirect."""

    async def run(pbx: Pbx, audiosocket: str) -> Recording:
        number = number_of(scenario)
        rec = await _recorder(pbx)
        try:
            channel_id = str(uuid.uuid4())
            rec.mark_originate()
            reply = await rec.action("Originate", *contract_originate(number, channel_id, audiosocket))
            if reply.response != "Success":
                raise AssertionError(f"{scenario}: Originate refused: {reply.to_dict()}")

            def answered(m: AmiMessage) -> bool:
                return m.event == "Newstate" and m.get("Uniqueid") == f"{channel_id};2" and m.get("ChannelState") == "6"

            await rec.wait_for(answered, 30.0)
            await asyncio.sleep(GREETING_S[scenario])
            await rec.action(
                "Redirect",
                ("Channel", channel_id),
                ("Context", operator_context),
                ("Exten", "s"),
                ("Priority", "1"),
            )
            await rec.wait_over(channel_id, CALL_TIMEOUT_S)
            return rec.recording()
        finally:
            await rec.close()

    return run


Job = tuple[Pbx, Callable[[], Awaitable[Recorded]]]  # a rig pbx (not started yet) and the call on it


async def record_all(carrier: Carrier) -> list[Recorded]:
    """Every transcript, concurrently, each on its own rig pbx (started and removed here)."""
    jobs: list[Job] = []
    servers: list[RecordingAudioSocketServer] = []
    await _scenario_jobs(carrier, jobs, servers)
    await _handover_jobs(carrier, jobs, servers)
    try:
        for pbx, _job in jobs:
            await asyncio.to_thread(pbx.instance.start)
        results = await asyncio.gather(*(job() for _pbx, job in jobs), return_exceptions=True)
        failed = [(pbx, r) for (pbx, _job), r in zip(jobs, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            report = "\n".join(f"{pbx.instance.name}: {r!r}\n{pbx.instance.diagnostics()}" for pbx, r in failed)
            raise AssertionError(f"{len(failed)} recording(s) failed:\n{report}")
        return [r for r in results if isinstance(r, Recorded)]
    finally:
        for pbx, _job in jobs:
            await asyncio.to_thread(pbx.instance.remove)
        for server in servers:
            with contextlib.suppress(Exception):
                await server.stop()


async def _scenario_jobs(carrier: Carrier, jobs: list[Job], servers: list[RecordingAudioSocketServer]) -> None:
    """A Local-channel call per scenario with a transcript, and an AudioSocket one for those in
    AUDIOSOCKET_STEMS (its server started here, added to ``servers``)."""
    for scenario in sorted(SCENARIOS.values(), key=lambda s: s.number):
        if not scenario.transcript:
            continue
        stem, number = scenario.transcript, f"799900000{scenario.number}"
        pbx = make_pbx(carrier, f"rig{scenario.number}", operators=0)

        async def local_job(stem: str = stem, number: str = number, pbx: Pbx = pbx) -> Recorded:
            return Recorded(f"local/{stem}.txt", await rig_call(stem, number, "rig-hold")(pbx))

        jobs.append((pbx, local_job))
        if stem not in AUDIOSOCKET_STEMS:
            continue
        server = RecordingAudioSocketServer()
        await server.start()
        servers.append(server)
        pbx = make_pbx(carrier, f"as{scenario.number}", operators=0, rig_audiosocket=f"127.0.0.1:{server.port}")

        async def as_job(stem: str = stem, number: str = number, pbx: Pbx = pbx, server: object = server) -> Recorded:
            recording = await rig_call(stem, number, "rig-analyze")(pbx)
            return Recorded(f"audiosocket/{stem}.ami.txt", recording, _frames_log(server))

        jobs.append((pbx, as_job))


async def _handover_jobs(carrier: Carrier, jobs: list[Job], servers: list[RecordingAudioSocketServer]) -> None:
    """The hand-over calls: answered, abandoned, and the two Redirect failures."""
    handovers = (
        ("20-person-handed-over-answered", "person_short", True, "dialer-operator"),
        ("21-person-abandons-queue", "person_leaves_queue", True, "dialer-operator"),
        ("22-redirect-queue-missing", "person_short", False, "dialer-operator"),
        ("23-redirect-context-missing", "person_short", True, "dialer-operator-missing"),
    )
    for stem, scenario_name, queue, context in handovers:
        server = RecordingAudioSocketServer()
        await server.start()
        servers.append(server)
        pbx = make_pbx(carrier, f"ho{stem[:2]}", operators=2, queue=queue)

        async def handover_job(
            stem: str = stem,
            scenario_name: str = scenario_name,
            context: str = context,
            pbx: Pbx = pbx,
            port: int = server.port,
        ) -> Recorded:
            recording = await handover_call(scenario_name, context)(pbx, f"127.0.0.1:{port}")
            return Recorded(f"handover/{stem}.txt", recording)

        jobs.append((pbx, handover_job))


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else TRANSCRIPTS_DIR
    carrier = make_carrier(ROUTES)
    carrier.instance.start()
    try:
        recorded = asyncio.run(record_all(carrier))
    except BaseException:
        print(carrier.instance.diagnostics(), file=sys.stderr)
        raise
    finally:
        carrier.instance.remove()
    for item in recorded:
        for path in item.write(out):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
