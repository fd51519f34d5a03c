"""Pure audio analysis: G.711, tone plans, call-progress tones, VAD, speech pattern.

Frames in, observations out; no I/O and no clock (time comes from the frame index).
"""

from dialer.audio.analyzer import (
    BeepDetected,
    CallAudioAnalyzer,
    Observation,
    SitDetected,
    SpeechEnded,
    SpeechPattern,
    SpeechStarted,
    ToneDetected,
)
from dialer.audio.speech import SpeechParams
from dialer.audio.toneplan import TonePlan, TonePlans, load_toneplans, parse_toneplans
from dialer.audio.tones import ToneParams
from dialer.audio.vad import VadParams
from dialer.domain.model import SpeechVerdict, ToneKind

__all__ = [
    "BeepDetected",
    "CallAudioAnalyzer",
    "Observation",
    "SitDetected",
    "SpeechEnded",
    "SpeechParams",
    "SpeechPattern",
    "SpeechStarted",
    "SpeechVerdict",
    "ToneDetected",
    "ToneKind",
    "ToneParams",
    "TonePlan",
    "TonePlans",
    "VadParams",
    "load_toneplans",
    "parse_toneplans",
]
