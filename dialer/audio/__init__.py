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
from dialer.audio.speech import SpeechParams, Verdict
from dialer.audio.toneplan import TonePlan, TonePlans, load_toneplans, parse_toneplans
from dialer.audio.tones import ToneKind, ToneParams
from dialer.audio.vad import VadParams

__all__ = [
    "BeepDetected",
    "CallAudioAnalyzer",
    "Observation",
    "SitDetected",
    "SpeechEnded",
    "SpeechParams",
    "SpeechPattern",
    "SpeechStarted",
    "ToneDetected",
    "ToneKind",
    "ToneParams",
    "TonePlan",
    "TonePlans",
    "VadParams",
    "Verdict",
    "load_toneplans",
    "parse_toneplans",
]
