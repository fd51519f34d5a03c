"""Labelled test calls for the call-progress analysis: generator (``generate``) and evaluation
(``evaluate``). A corpus is a directory of ``<id>.wav`` files (8 kHz 16-bit mono) plus one
``labels.jsonl`` line per call."""
