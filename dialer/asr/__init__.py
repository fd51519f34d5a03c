"""Offline speech recognition of announcements: the phrase catalogue, the tolerant matcher, the
Vosk engine (one shared model, one grammar recognizer per call, bounded executor) and the model
manifest/download.

The catalogue and matcher are pure; :mod:`dialer.asr.engine` and :mod:`dialer.asr.models` are
the adapters (they import vosk / touch the network only when used).
"""

from dialer.asr.catalogue import Catalogue, Phrase, load_catalogue, parse_catalogue
from dialer.asr.matcher import Match, PhraseMatcher

__all__ = ["Catalogue", "Match", "Phrase", "PhraseMatcher", "load_catalogue", "parse_catalogue"]
