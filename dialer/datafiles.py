"""Every data file the settings name, read and validated at start-up (``dialer run``) — whether or
not a speech model is installed, so a broken ``phrases.yaml`` is found the day it is edited, not
the day a model arrives. Each loader raises ConfigError naming the file and the line."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dialer.asr.catalogue import Catalogue, load_catalogue
from dialer.audio.toneplan import TonePlans, load_toneplans
from dialer.config import Settings
from dialer.domain.numbering import RegionZones
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataFiles:
    rules: RulesTable
    phrases: Catalogue
    tones: TonePlans
    own_numbers: frozenset[str]
    region_zones: RegionZones | None  # optional file: without it mobile numbers use the campaign zone


def validate(settings: Settings) -> DataFiles:
    """Load every data file; the first problem is a ConfigError (``file:line: problem``)."""
    rules = RulesTable.load(settings.rules_path)
    phrases = load_catalogue(settings.phrases_path)
    tones = load_toneplans(settings.tones_path)
    try:
        tones.get(settings.campaign.region)
    except ConfigError as exc:
        raise ConfigError(f"{exc} for [campaign] region", source=str(settings.tones_path)) from None
    own = load_own_numbers(settings.own_numbers_path)
    zones = RegionZones.load(settings.region_zones_path) if settings.region_zones_path.exists() else None
    if settings.announcements_path is not None and settings.announcements_path.is_dir():
        from dialer.app import fingerprint_library  # the library is fingerprinted once per process

        fingerprint_library(settings.announcements_path)
    log.info(
        "data files valid: rules %s, phrases %s, tones %s, own numbers %s (%d)",
        settings.rules_path,
        settings.phrases_path,
        settings.tones_path,
        settings.own_numbers_path,
        len(own),
    )
    return DataFiles(rules, phrases, tones, own, zones)
