"""The composition root: settings → adapters → services. The CLI (`dialer run`, `dialer demo`)
and the integration tests build the worker here and nowhere else.

Start order: database (migrated) → repository → call registry → AudioSocket server → AMI pool →
outbox publisher → speech service → recorder → worker. Stop order is the reverse, after the worker
drained its calls (no new calls, live calls finish or are handed over, then adapters close).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from dialer.ami.pool import ServerPool
from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import RecognizerEngine
from dialer.asr.select import engine_from_settings
from dialer.asr.service import DEFAULT_MAX_BUFFER_FRAMES, AsrService
from dialer.audio.fingerprint import FingerprintLibrary, load_library
from dialer.audio.silero import VadChoice, choose_vad
from dialer.audio.toneplan import load_toneplans
from dialer.audiosocket.server import AudioSocketServer, keepalive_for
from dialer.calls import CallRegistry
from dialer.config import AmiEndpoint, AudioSettings, RecordingSettings, Settings
from dialer.domain.fusion import FusionConfig
from dialer.domain.model import Evidence
from dialer.domain.numbering import NumberingIndex
from dialer.domain.rules import RulesTable
from dialer.errors import ConfigError, DialerError
from dialer.events import payloads
from dialer.events.commands import CommandSubscriber
from dialer.events.notifier import EventNotifier
from dialer.events.publisher import OutboxPublisher
from dialer.learn.live import LiveCollector, current_setup, learning_recorder
from dialer.logging import register_secret
from dialer.metrics import Metrics
from dialer.pacing.live import PacingConfig
from dialer.services import command_processor
from dialer.session.phrases import DEFAULT_CONFIRM_PARTIALS
from dialer.session.recording import Recorder
from dialer.session.session import SessionConfig, SessionSetup
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.dialling import ClaimedContact
from dialer.storage.ingest import numbering_index
from dialer.storage.migrate import ensure_current
from dialer.storage.repo import Repository
from dialer.storage.stats import outbox_backlog
from dialer.worker import Clock, SystemClock, Worker, WorkerConfig, WorkerStats

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


@dataclass
class RunOptions:
    worker_id: str = field(default_factory=default_worker_id)
    campaigns: tuple[str, ...] = ()
    mqtt: bool = True
    time_scale: float = 1.0
    ami_endpoints: Sequence[AmiEndpoint] | None = None  # override the settings (demo: the simulator)
    audiosocket_bind: tuple[str, int] | None = None  # override the settings (port 0 = any free)
    audiosocket_advertise: str | None = None  # host:port Asterisk connects to
    drain_s: float = 30.0
    concurrency_override: int | None = None
    clock: Clock = field(default_factory=SystemClock)
    audio_analysis: bool = True  # False: no audio analysed, every answered call goes to an operator
    setup: SessionSetup | None = None  # override how calls are decided (default: from the settings)
    asr_engine: RecognizerEngine | Literal["settings"] | None = "settings"
    recording: RecordingSettings | None = None  # override the settings' [recording]
    on_call_finished: Callable[[uuid.UUID, ClaimedContact, Evidence], None] | None = None
    connect_timeout_s: float = 10.0
    pacing: PacingConfig | None = None  # override the settings' [pacing] / [[pacing_campaign]]
    # METRICS: where /metrics listens ("settings": [metrics] listen; None: nowhere; port 0: any free)
    metrics_listen: tuple[str, int] | Literal["settings"] | None = "settings"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    repo: Repository
    audiosocket: AudioSocketServer
    pool: ServerPool
    publisher: OutboxPublisher | None
    worker: Worker
    commands: CommandSubscriber | None = None
    asr: AsrService | None = None
    recorder: Recorder | None = None
    metrics: Metrics = field(default_factory=Metrics)
    metrics_listen: tuple[str, int] | None = None
    metrics_port: int | None = None  # bound while running
    collector: LiveCollector | None = None  # [learn] live


def register_secrets(settings: Settings, endpoints: Sequence[AmiEndpoint]) -> None:
    """Tell the log filter every secret value, so none can leak into a log line."""
    for ep in endpoints:
        register_secret(ep.secret)
    register_secret(settings.mqtt.password)
    _scheme, sep, rest = settings.database_url.partition("://")
    creds = rest.rpartition("@")[0] if sep else ""
    if ":" in creds:
        register_secret(creds.partition(":")[2])


async def build(settings: Settings, opts: RunOptions) -> Runtime:
    register_secrets(settings, opts.ami_endpoints if opts.ami_endpoints is not None else settings.ami)
    db = Database(settings.database_url, create=False)  # the schema comes from `dialer db upgrade`
    try:
        await ensure_current(db)
        repo = await Repository.open(db, EventNotifier())
        rules = RulesTable.load(settings.rules_path)
        registry = CallRegistry()
        audiosocket, advertise = await _start_audiosocket(settings, opts, registry)
        endpoints = tuple(opts.ami_endpoints) if opts.ami_endpoints is not None else settings.ami
        pool = ServerPool(endpoints, on_event=registry.on_ami_event, on_server_up=registry.on_server_up)
        publisher: OutboxPublisher | None = None
        if opts.mqtt and settings.mqtt.enabled:
            publisher = OutboxPublisher(repo, settings.mqtt, worker_id=opts.worker_id)
        setup, asr = await _call_analysis(settings, opts)
        recorder, collector = _recorders(settings, opts, repo, setup)
        metrics = Metrics()
        worker = Worker(
            config=_worker_config(settings, opts, advertise),
            repo=repo,
            pool=pool,
            registry=registry,
            setup=setup,
            rules=rules,
            clock=opts.clock,
            audio=opts.audio_analysis,
            asr=asr,
            recorder=recorder if recorder.settings.enabled else None,
            notify_events=publisher.notify if publisher is not None else (lambda: None),
            on_call_finished=opts.on_call_finished,
            metrics=metrics,
        )
        _watch(metrics, db, pool, worker, asr, recorder, opts)
        subscriber: CommandSubscriber | None = None
        if publisher is not None:
            publisher.health_from(worker.health)
            subscriber = _command_subscriber(settings, opts, repo, rules, worker)
        listen = settings.metrics.address if opts.metrics_listen == "settings" else opts.metrics_listen
        return Runtime(
            settings,
            db,
            repo,
            audiosocket,
            pool,
            publisher,
            worker,
            subscriber,
            asr,
            worker.recorder,
            metrics,
            listen,
            collector=collector,
        )
    except BaseException:
        await db.dispose()
        raise


def _recorders(
    settings: Settings, opts: RunOptions, repo: Repository, setup: SessionSetup
) -> tuple[Recorder, LiveCollector | None]:
    """The call recorder, and with ``[learn] live`` the collector of what it records (its
    recorder then keeps only what may hold an unknown announcement, unless [recording] is on)."""
    if not settings.learn.live or opts.recording is not None:
        return Recorder(opts.recording or settings.recording, clock=opts.clock.now), None
    recorder, root = learning_recorder(settings, opts.clock.now)

    async def numbering() -> NumberingIndex | None:
        return numbering_index(await repo.numbering_ranges())

    collector = LiveCollector(
        root,
        settings.learn,
        current_setup(setup, settings.announcements_path),
        clock=opts.clock.now,
        numbering=numbering,
        library_dir=settings.announcements_path,
    )
    return recorder, collector


async def _start_audiosocket(
    settings: Settings, opts: RunOptions, registry: CallRegistry
) -> tuple[AudioSocketServer, str]:
    """The AudioSocket server, listening, and the host:port Asterisk is told to connect to."""
    bind = opts.audiosocket_bind or (settings.audiosocket.host, settings.audiosocket.port)
    audiosocket = AudioSocketServer(
        registry.audio_sink, host=bind[0], port=bind[1], keepalive_s=keepalive_for(opts.time_scale)
    )
    await audiosocket.start()
    advertise = opts.audiosocket_advertise or settings.audiosocket.advertise
    if not advertise:
        host = "127.0.0.1" if bind[0] in ("0.0.0.0", "") else bind[0]
        advertise = f"{host}:{audiosocket.port}"
    return audiosocket, advertise


async def _call_analysis(settings: Settings, opts: RunOptions) -> tuple[SessionSetup, AsrService | None]:
    """How calls are decided, and the speech recognizer service (None: no recognizer)."""
    engine = asr_engine(settings) if opts.asr_engine == "settings" else opts.asr_engine
    if opts.setup is not None:
        setup = opts.setup
    else:
        # the Silero model is read from disk once per process: not on the event loop
        vad = await asyncio.to_thread(vad_choice, settings.audio)
        setup = session_setup(settings, engine=engine, vad=vad)
    asr = None
    if engine is not None and opts.audio_analysis:
        # the audio waiting for the recognizer is a real-time budget (see SessionConfig.stretched)
        buffer = int(DEFAULT_MAX_BUFFER_FRAMES / min(1.0, opts.time_scale))
        asr = AsrService(engine, max_workers=settings.asr.max_workers, max_buffer_frames=buffer)
    setup = replace(setup, config=setup.config.stretched(opts.time_scale))
    return setup, asr


def _worker_config(settings: Settings, opts: RunOptions, audiosocket_addr: str) -> WorkerConfig:
    return WorkerConfig(
        worker_id=opts.worker_id,
        campaigns=opts.campaigns,
        dial=replace(settings.dial),
        audiosocket_addr=audiosocket_addr,
        concurrency_override=opts.concurrency_override,
        drain_s=opts.drain_s,
        time_scale=opts.time_scale,
        leases=settings.leases,
        pacing=opts.pacing or PacingConfig(settings.pacing, settings.pacing_campaigns),
        compliance=settings.compliance,
    )


def _command_subscriber(
    settings: Settings, opts: RunOptions, repo: Repository, rules: RulesTable, worker: Worker
) -> CommandSubscriber:
    processor = command_processor(
        repo,
        rules,
        own_numbers_path=settings.own_numbers_path,
        clock=opts.clock.now,
        default_campaign=default_campaign(settings),
        region=settings.campaign.region,
        on_change=worker.wake,
    )
    return CommandSubscriber(processor, settings.mqtt, client_id=f"{opts.worker_id}-cmd")


def _watch(
    metrics: Metrics,
    db: Database,
    pool: ServerPool,
    worker: Worker,
    asr: AsrService | None,
    recorder: Recorder,
    opts: RunOptions,
) -> None:
    """METRICS: where the scrape-time numbers come from."""

    async def outbox() -> tuple[int, datetime | None]:
        backlog = await outbox_backlog(db)
        return backlog.events, backlog.oldest_created_at

    metrics.watch(
        live_phases=lambda: [c.session.phase.value for c in worker.registry],
        ami_states=lambda: [(x.server, str(x.state)) for x in pool.loads()],
        outbox=outbox,
        clock=opts.clock.now,
        recording_dir=recorder.settings.dir if recorder.settings.enabled else None,
    )
    if asr is not None:
        metrics.watch(asr_queue=lambda: asr.jobs)
        asr.on_decode_s = metrics.asr_decoded


async def run(rt: Runtime, stop: asyncio.Event, *, connect_timeout_s: float = 10.0) -> WorkerStats:
    """Run the worker until ``stop`` is set; then stop everything in order."""
    await _start(rt)
    reporter = asyncio.create_task(report_status(rt), name="status-reporter") if rt.publisher else None
    try:
        if rt.metrics_listen is not None:  # METRICS
            host, port = rt.metrics_listen
            try:
                rt.metrics_port = await rt.metrics.serve(host, port)
            except OSError as exc:
                raise ConfigError(f"metrics.listen: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        await rt.pool.wait_any_ready(connect_timeout_s)
        return await rt.worker.run(stop)
    finally:
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
        await _stop(rt)


async def _start(rt: Runtime) -> None:
    """Start order: events out, commands in, Asterisk, the recognizer, the recorders."""
    if rt.publisher is not None:
        await rt.publisher.start()
    if rt.commands is not None:
        await rt.commands.start()
    rt.pool.start()
    if rt.asr is not None:
        await rt.asr.start()  # the model loads off the loop; without it calls go on unrecognised
    if rt.recorder is not None:
        rt.recorder.start()
    if rt.collector is not None:
        rt.collector.start()


async def _stop(rt: Runtime) -> None:
    """Stop order: what feeds the calls first, what records them after, the database last."""
    if rt.commands is not None:
        await rt.commands.stop()
    await rt.pool.close()
    await rt.audiosocket.close()
    if rt.asr is not None:
        await rt.asr.aclose()
    if rt.collector is not None:
        await rt.collector.aclose()  # it reads what the recorder wrote: stopped first
    if rt.recorder is not None:
        await rt.recorder.aclose()
    if rt.publisher is not None:
        await rt.publisher.stop()
    await rt.metrics.aclose()
    await rt.db.dispose()


async def report_status(rt: Runtime, debounce_s: float = 1.0) -> None:
    """Keep the retained per-campaign status topics current: after attempts are recorded (at most
    once per ``debounce_s``), read the counts and hand them to the publisher."""
    assert rt.publisher is not None
    publisher = rt.publisher
    while True:
        await rt.worker.activity.wait()
        rt.worker.activity.clear()
        await asyncio.sleep(debounce_s)
        try:
            statuses = await rt.repo.status(None, rt.worker.clock.now())
        except DialerError as exc:
            log.warning("campaign status: %s", exc)
            continue
        wanted = set(rt.worker.config.campaigns)
        for st in statuses:
            if wanted and st.name not in wanted:
                continue
            publisher.set_campaign_status(
                st.name,
                payloads.campaign_status(
                    campaign=st.name,
                    occurred_at=rt.worker.clock.now(),
                    contacts=st.by_state,
                    results=st.by_result,
                    live_calls=rt.worker.live_calls_of(st.name),
                ),
            )


def default_campaign(settings: Settings, name: str = "") -> CampaignSettings:
    c = settings.campaign
    return CampaignSettings(
        name=name,
        timezone=c.timezone,
        weekday_window=c.weekday_window,
        weekend_window=c.weekend_window,
        concurrency=c.concurrency,
    )


# Partial hypotheses that must agree before a partial match counts, per engine: Vosk gives one
# every 200 ms chunk and they flicker; Whisper's early decodes come half a second apart and two
# that agree are as good as a final one. In early media (before an answer) one Whisper decode
# counts: nobody there can be hung up on, a retry class is what the network would give anyway,
# and «Некорректный контакт» classes still need two agreeing decodes (FusionConfig).
CONFIRM_PARTIALS = {"vosk": 3, "whisper": 2}
CONFIRM_PARTIALS_EARLY_MEDIA = {"whisper": 1}


def session_setup(
    settings: Settings,
    *,
    fusion: FusionConfig | None = None,
    engine: RecognizerEngine | None = None,
    vad: VadChoice | None = None,
) -> SessionSetup:
    """How calls are decided, from the settings: the region's tone plan, the phrase catalogue (read
    and validated whether or not a speech model is installed), the known recordings, the
    confirmation rule of the speech engine that will decode (when one does), and the
    voice-activity detector (``vad``, else ``[audio] vad``'s, loaded here)."""
    plans = load_toneplans(settings.tones_path)
    catalogue = load_catalogue(settings.phrases_path)
    return SessionSetup(
        plan=plans.get(settings.campaign.region),
        config=SessionConfig(
            fusion=fusion or FusionConfig(),
            max_call_ms=int(settings.dial.max_call_s * 1000),
            confirm_partials=CONFIRM_PARTIALS.get(engine.name, DEFAULT_CONFIRM_PARTIALS)
            if engine
            else DEFAULT_CONFIRM_PARTIALS,
            confirm_partials_early=CONFIRM_PARTIALS_EARLY_MEDIA.get(engine.name) if engine else None,
        ),
        matcher=PhraseMatcher(catalogue),
        fingerprints=fingerprint_library(settings.announcements_path),
        sample_rate=settings.asr.sample_rate,
        vad=vad if vad is not None else vad_choice(settings.audio),
    )


@functools.cache
def vad_choice(audio: AudioSettings) -> VadChoice:
    """``[audio] vad``'s detector, its model loaded once per process; a Silero model that was asked
    for and cannot be used is one warning, and calls get the energy detector."""
    choice, fallback = choose_vad(audio.vad, audio.vad_model_path)
    (log.warning if fallback else log.info)("voice activity: %s", choice.reason)
    return choice


def asr_engine(settings: Settings) -> RecognizerEngine | None:
    """The speech engine ``[asr]`` asks for, not loaded yet; None (said once) when its model is not
    installed — announcements are then judged by known recordings, tones and causes."""
    engine, why = engine_from_settings(settings.asr, load_catalogue(settings.phrases_path))
    if engine is None:
        log.warning("speech recognition off: %s; announcements are judged by known recordings, tones and causes", why)
    else:
        log.info("speech recognition: %s", why)
    return engine


@functools.cache
def fingerprint_library(path: Path | None) -> FingerprintLibrary | None:
    """The known announcement recordings, read and fingerprinted once per process.

    No directory configured, or none there: no library (said once). A directory whose index is
    broken is a :class:`ConfigError` naming the file and line — the worker does not start."""
    if path is None:
        log.info("no announcements library configured: known recordings are not fingerprinted")
        return None
    if not path.is_dir():
        log.warning("no announcements library at %s: known recordings are not fingerprinted", path)
        return None
    library = load_library(path)
    if not library:
        log.info("announcements library %s lists no recordings yet", library.source)
        return None
    log.info("announcements library %s: %d known recordings", library.source, len(library))
    return library
