"""The trained sequence examples run end to end for a few steps (CI); full runs are in the
issue note / docs/sections/sequence.md."""

import numpy as np
import pytest

from minigrad.examples import train_charlm, train_reverse
from minigrad.examples.sequence import CharTransformer, sample_text


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text("the quick brown fox jumps over the lazy dog.\n" * 40)
    return str(p)


@pytest.mark.parametrize("model,kw", [
    ("lstm", {"dim": 8, "hidden": 16}),
    ("transformer", {"dim": 16, "heads": 2, "layers": 1}),
])
def test_charlm_runs(text_file, model, kw):
    r = train_charlm(text_file, model=model, steps=3, batch_size=4, seq_len=16,
                     sample_every=3, sample_len=10, quiet=True, log=lambda *a: None, **kw)
    assert np.isfinite(r["val_bits_per_char"]) and 0 < r["val_bits_per_char"] < 10
    assert len(r["sample"]) >= 10 and set(r["sample"]) <= set(r["vocab"]) | set("the quick")


@pytest.mark.parametrize("model,kw", [("lstm", {"hidden": 16}),
                                      ("transformer", {"dim": 16, "heads": 2, "layers": 1})])
def test_reverse_runs(model, kw):
    r = train_reverse(model, length=5, steps=3, batch_size=8, eval_every=3, quiet=True,
                      log=lambda *a: None, **kw)
    assert r["steps"] == 3 and 0.0 <= r["sequence_accuracy"] <= 1.0


def test_bad_arguments(text_file):
    with pytest.raises(ValueError, match="'lstm' or 'transformer'"):
        train_reverse("gru", steps=1, quiet=True)
    with pytest.raises(ValueError, match="too short"):
        train_charlm(text_file, seq_len=5000, steps=1, quiet=True)


def test_transformer_sampling_respects_context():
    m = CharTransformer(5, dim=8, heads=2, layers=1, context=4)
    s = sample_text(m, {c: i for i, c in enumerate("abcde")}, list("abcde"), prompt="ab",
                    length=6)
    assert len(s) == 8
