"""Offline speech recognition of announcements: the phrase catalogue, the tolerant matcher, the
recognizer port (:mod:`~dialer.asr.port`) with its Whisper and Vosk engines, the engine choice
(:mod:`~dialer.asr.select`) and the model manifest/download (:mod:`~dialer.asr.models`).

The catalogue and matcher are pure; the engines and the models module are the adapters (they
import faster-whisper / vosk or touch the network only when used).
"""

from dialer.asr.catalogue import Catalogue, Phrase, load_catalogue, parse_catalogue
from dialer.asr.matcher import Match, PhraseMatcher

__all__ = ["Catalogue", "Match", "Phrase", "PhraseMatcher", "load_catalogue", "parse_catalogue"]
