"""What every command shares: settings, the one Database of the process, the repository, the
clock, a progress bar, argument types."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from dialer.config import Settings, load_settings
from dialer.domain.model import ExclusionKind
from dialer.domain.phone import PROBLEM_TITLES_RU, normalise
from dialer.errors import InputError
from dialer.events.notifier import EventNotifier
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.repo import Repository


class Subparsers(Protocol):
    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


@dataclass
class CliContext:
    config_path: Path | None = None
    db_url: str | None = None
    _settings: Settings | None = field(default=None, init=False)
    _db: Database | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def database_url(self) -> str:
        return self.db_url or self.settings.database_url

    def database(self, *, create: bool = False) -> Database:
        """The process's one Database (engine), created on first use. Only ``create=True``
        (``dialer db upgrade``) may create a missing SQLite file: every other verb needs a
        migrated database, and a mistyped path must not leave an empty file behind."""
        if self._db is None:
            self._db = Database(self.database_url, create=create)
        return self._db

    async def repository(self) -> Repository:
        return await Repository.open(self.database(), EventNotifier())

    def campaign(self, name: str, args: argparse.Namespace | None = None) -> CampaignSettings:
        c = self.settings.campaign
        return CampaignSettings(
            name=name,
            timezone=getattr(args, "timezone", None) or c.timezone,
            weekday_window=c.weekday_window,
            weekend_window=c.weekend_window,
            concurrency=getattr(args, "concurrency", None) or c.concurrency,
        )

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None


def parse_when(text: str) -> datetime:
    """ISO time for --now/--at; a time without zone is UTC."""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r} (e.g. 2026-11-18T09:00Z)") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def exclusion_kind(text: str) -> ExclusionKind:
    try:
        return ExclusionKind(text.lower())
    except ValueError:
        choices = ", ".join(k.value for k in ExclusionKind)
        raise argparse.ArgumentTypeError(f"kind must be one of {choices}, not {text!r}") from None


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return n


def e164_or_error(raw: str, region: str, where: str) -> str:
    n = normalise(raw, region)
    if n.e164 is None:
        why = PROBLEM_TITLES_RU.get(n.problem, str(n.problem)) if n.problem else "unusable"
        raise InputError(f"{where}: not a usable phone number {raw!r} ({n.problem}: {why})")
    return n.e164


class Progress:
    """A one-line progress bar on stderr, shown only on a terminal (or when forced)."""

    def __init__(
        self, total: int, *, enabled: bool | None = None, stream: TextIO | None = None, label: str = ""
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(total, 1)
        self.label = label
        self._last = 0.0

    def update(self, done: int, rows: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        t = time.monotonic()
        if not force and t - self._last < 0.2:
            return
        self._last = t
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{self.label}[{bar:<30}] {frac * 100:5.1f}% {rows} rows")
        self.stream.flush()

    def finish(self, rows: int) -> None:
        if self.enabled:
            self.update(self.total, rows, force=True)
            self.stream.write("\n")
            self.stream.flush()
