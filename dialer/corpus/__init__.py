"""Labelled test calls for the call-progress analysis. A corpus is a directory of ``<id>.wav`` files
(8 kHz 16-bit mono) plus one ``labels.jsonl`` line per call.

Generator: ``texts`` (what is said), ``tts`` (festival and espeak-ng voices, sox "speakers"),
``tones`` (rendered from config/tones.yaml), ``audio`` (levels, noise, G.711), ``wavio`` (files),
``generate`` (planning and assembly). Evaluation: ``evaluate``."""
