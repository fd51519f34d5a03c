"""Per-call analysis that turns audio frames (and recognised text) into the facts the fusion reads.

:class:`~dialer.analysis.offline.CallAnalysis` is shared by the worker (live frames from
AudioSocket) and by ``dialer eval`` (frames read from a labelled corpus).
"""

from dialer.analysis.offline import (
    CallAnalysis,
    OfflineResult,
    PhraseTracker,
    Recognizer,
    RecognizerFactory,
    RecognizerUpdate,
    analyse_call,
    network_facts_at,
)

__all__ = [
    "CallAnalysis",
    "OfflineResult",
    "PhraseTracker",
    "Recognizer",
    "RecognizerFactory",
    "RecognizerUpdate",
    "analyse_call",
    "network_facts_at",
]
