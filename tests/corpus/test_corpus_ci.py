"""The CI gate of issue 4: generate the small corpus, evaluate it, meet config/eval_thresholds.yaml.

Marked slow (≈10 s on 2 cores: ~4 s to synthesise 77 calls, ~3 s to replay them) but never skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.corpus.labels import read_labels

from .cli_harness import run_cli


@pytest.mark.slow
def test_small_corpus_meets_the_shipped_thresholds(tmp_path: Path) -> None:
    corpus_dir = tmp_path / "corpus"
    rc, text = run_cli(["corpus", "generate", str(corpus_dir), "--small", "--seed", "1"])
    assert rc == 0, text
    labels = list(read_labels(corpus_dir))
    assert 60 <= len(labels) <= 100
    assert all((corpus_dir / f"{label.id}.wav").is_file() for label in labels)

    rc, text = run_cli(["eval", str(corpus_dir)])
    assert "All thresholds met." in text, text
    assert rc == 0
    assert "person calls hung up on: 0 of" in text
