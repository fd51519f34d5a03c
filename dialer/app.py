"""The composition root: settings → adapters → services. The CLI (`dialer run`, `dialer demo`)
and the integration tests build the worker here and nowhere else.

Start order: database (migrated) → repository → AudioSocket server → AMI pool → outbox publisher →
worker. Stop order is the reverse, after the worker drained its calls (no new calls, live calls
finish or are handed over, then adapters close).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from dialer.ami.pool import ServerPool
from dialer.asr.catalogue import Catalogue, load_catalogue
from dialer.audio.fingerprint import FingerprintLibrary, load_library
from dialer.audio.toneplan import load_toneplans
from dialer.audiosocket.server import AudioSocketServer
from dialer.config import AmiEndpoint, Settings
from dialer.domain.fusion import FusionConfig
from dialer.domain.model import Evidence
from dialer.domain.rules import RulesTable
from dialer.errors import DialerError
from dialer.events import payloads
from dialer.events.commands import CommandSubscriber
from dialer.events.publisher import OutboxPublisher
from dialer.logging import register_secret
from dialer.pipeline import AsyncRecognizerFactory, pipeline_factory
from dialer.services import command_processor
from dialer.storage.db import Database
from dialer.storage.migrate import ensure_current
from dialer.storage.repo import CampaignSettings, ClaimedContact, Repository
from dialer.worker import Clock, PipelineFactory, SystemClock, Worker, WorkerConfig, WorkerStats

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
    pipeline_factory: PipelineFactory | None = None
    on_call_finished: Callable[[uuid.UUID, ClaimedContact, Evidence], None] | None = None
    connect_timeout_s: float = 10.0


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
        repo = await Repository.open(db)
        rules = RulesTable.load(settings.rules_path)
        bind = opts.audiosocket_bind or (settings.audiosocket.host, settings.audiosocket.port)

        holder: dict[str, Worker] = {}
        audiosocket = AudioSocketServer(lambda uid: holder["w"].audio_for(uid), host=bind[0], port=bind[1])
        await audiosocket.start()
        advertise = opts.audiosocket_advertise or settings.audiosocket.advertise
        if not advertise:
            host = "127.0.0.1" if bind[0] in ("0.0.0.0", "") else bind[0]
            advertise = f"{host}:{audiosocket.port}"

        endpoints = tuple(opts.ami_endpoints) if opts.ami_endpoints is not None else settings.ami
        pool = ServerPool(
            endpoints,
            on_event=lambda ev: holder["w"].on_ami_event(ev),
            on_server_up=lambda up: holder["w"].on_server_up(up),
        )
        publisher: OutboxPublisher | None = None
        if opts.mqtt and settings.mqtt.enabled:
            publisher = OutboxPublisher(
                repo,
                settings.mqtt,
                worker_id=opts.worker_id,
                health_details=lambda: holder["w"].health(),
            )

        fusion = FusionConfig()
        worker = Worker(
            config=WorkerConfig(
                worker_id=opts.worker_id,
                campaigns=opts.campaigns,
                dial=replace(settings.dial),
                audiosocket_addr=advertise,
                concurrency_override=opts.concurrency_override,
                drain_s=opts.drain_s,
                time_scale=opts.time_scale,
                fusion=fusion,
                leases=settings.leases,
            ),
            repo=repo,
            pool=pool,
            audiosocket=audiosocket,
            rules=rules,
            clock=opts.clock,
            pipeline_factory=opts.pipeline_factory,
            notify_events=publisher.notify if publisher is not None else (lambda: None),
            on_call_finished=opts.on_call_finished,
        )
        holder["w"] = worker
        subscriber: CommandSubscriber | None = None
        if publisher is not None:
            processor = command_processor(
                repo,
                rules,
                own_numbers_path=settings.own_numbers_path,
                clock=opts.clock.now,
                default_campaign=default_campaign(settings),
                region=settings.campaign.region,
                on_change=worker.wake,
            )
            subscriber = CommandSubscriber(processor, settings.mqtt, client_id=f"{opts.worker_id}-cmd")
        return Runtime(settings, db, repo, audiosocket, pool, publisher, worker, subscriber)
    except BaseException:
        await db.dispose()
        raise


async def run(rt: Runtime, stop: asyncio.Event, *, connect_timeout_s: float = 10.0) -> WorkerStats:
    """Run the worker until ``stop`` is set; then stop everything in order."""
    if rt.publisher is not None:
        await rt.publisher.start()
    if rt.commands is not None:
        await rt.commands.start()
    rt.pool.start()
    reporter = asyncio.create_task(report_status(rt), name="status-reporter") if rt.publisher else None
    try:
        await rt.pool.wait_any_ready(connect_timeout_s)
        return await rt.worker.run(stop)
    finally:
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
        if rt.commands is not None:
            await rt.commands.stop()
        await rt.pool.close()
        await rt.audiosocket.close()
        if rt.publisher is not None:
            await rt.publisher.stop()
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


def model_path_or_none(settings: Settings) -> Path | None:
    p = settings.asr.model_path
    return p if p is not None and p.exists() else None


def pipeline_factory_from_settings(settings: Settings) -> PipelineFactory:
    """Tone/VAD analysis always; known-recording fingerprints when the library has any; speech
    recognition when the model is present (each absence said once)."""
    plans = load_toneplans(settings.tones_path)
    plan = plans.get(settings.campaign.region)
    library = fingerprint_library(settings.announcements_path)
    model = model_path_or_none(settings)
    if model is None:
        log.warning(
            "no speech model at %s: announcements are judged by %stones and causes only "
            "(dialer models pull fetches it)",
            settings.asr.model_path,
            "known recordings, " if library else "",
        )
        return pipeline_factory(plan, fingerprints=library)
    catalogue = load_catalogue(settings.phrases_path)
    return pipeline_factory(plan, catalogue, recognizer_factory_for(model, catalogue, settings), library)


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


def recognizer_factory_for(model: Path, catalogue: Catalogue, settings: Settings) -> AsyncRecognizerFactory:
    """The shared Vosk model (loaded once) and one grammar recogniser per call."""
    from dialer.asr.engine import live_recognizer_factory  # vosk is imported only when a model exists

    factory: AsyncRecognizerFactory = live_recognizer_factory(model, catalogue, max_workers=settings.asr.max_workers)
    return factory
