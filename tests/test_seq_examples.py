"""The trained sequence examples learn in a few dozen steps (CI): held-out bits/char and
reversal accuracy must pass set thresholds; full runs are in docs/sections/sequence.md."""

import pytest

from minigrad.app.examples import train_charlm, train_reverse
from minigrad.app.examples.sequence import CharTransformer, sample_text


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text("the quick brown fox jumps over the lazy dog.\n" * 40)
    return str(p)


@pytest.mark.parametrize(
    "model,kw,max_bpc",
    [
        ("lstm", {"dim": 8, "hidden": 16}, 3.0),  # reaches ~2.2 bits/char
        ("transformer", {"dim": 16, "heads": 2, "layers": 1}, 2.2),  # ~1.45
    ],
)
def test_charlm_learns(text_file, model, kw, max_bpc):
    """40 steps on a repetitive text: held-out bits/char must fall well below the uniform
    log2(29) = 4.86 (3 steps stay at ~4.7)."""
    r = train_charlm(
        text_file,
        model=model,
        steps=40,
        batch_size=4,
        seq_len=16,
        lr=1e-2,
        sample_every=40,
        sample_len=10,
        quiet=True,
        log=lambda *a: None,
        **kw,
    )
    assert len(r["vocab"]) == 29
    assert r["val_bits_per_char"] < max_bpc
    assert len(r["sample"]) >= 10 and set(r["sample"]) <= set(r["vocab"]) | set("the quick")


@pytest.mark.parametrize(
    "model,kw,min_digit_acc,min_seq_acc",
    [
        ("lstm", {"hidden": 16}, 0.2, 0.0),  # reaches ~0.27 digit accuracy (chance: 0.1)
        ("transformer", {"dim": 16, "heads": 2, "layers": 1}, 0.5, 0.03),  # ~0.66 and ~0.09
    ],
)
def test_reverse_learns(model, kw, min_digit_acc, min_seq_acc):
    """60 steps at length 5 on 1000 fresh sequences: accuracy well above chance (0.1 per
    digit, 1e-5 per sequence)."""
    r = train_reverse(
        model,
        length=5,
        steps=60,
        batch_size=8,
        eval_every=60,
        lr=1e-2,
        quiet=True,
        log=lambda *a: None,
        **kw,
    )
    assert r["steps"] == 60
    assert r["digit_accuracy"] > min_digit_acc
    assert r["sequence_accuracy"] >= min_seq_acc


def test_bad_arguments(text_file):
    with pytest.raises(ValueError, match="'lstm' or 'transformer'"):
        train_reverse("gru", steps=1, quiet=True)
    with pytest.raises(ValueError, match="too short"):
        train_charlm(text_file, seq_len=5000, steps=1, quiet=True)


def test_transformer_sampling_respects_context():
    m = CharTransformer(5, dim=8, heads=2, layers=1, context=4)
    s = sample_text(m, {c: i for i, c in enumerate("abcde")}, list("abcde"), prompt="ab", length=6)
    assert len(s) == 8
