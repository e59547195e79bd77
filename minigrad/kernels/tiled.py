"""The "tiled" variant of ``attention``: online softmax over blocks of keys (FlashAttention's
algorithm, written readably in NumPy/CuPy), never holding the (L, S) score matrix.

Same names and signatures as :mod:`minigrad.kernels.reference` (see the attention comment
there).  Select it with ``minigrad.kernels.use("attention", "tiled")`` or
``MINIGRAD_KERNELS=attention=tiled``; it comes after numpy in the default CPU order (the table
in minigrad/kernels/__init__.py), because in NumPy the materialising reference is faster (fewer
Python-level steps) whenever the scores fit in memory.  This is also the algorithm a native
kernel should follow.

Forward, for each block of ``BLOCK`` keys (all queries at once)::

    s     = scale * q k_blk^T + mask_blk          (B, L, blk)   the only score storage
    m_new = max(m, rowmax(s))                      running max
    p     = exp(s - m_new)
    l     = l * exp(m - m_new) + rowsum(p)         running sum of exp, rescaled
    acc   = acc * exp(m - m_new) + p v_blk         running numerator, rescaled
    out = acc / l,  lse = m + log(l)               (B, L): all the backward keeps

Backward recomputes each block's scores and uses P_blk = exp(s - lse) exactly.
"""

from __future__ import annotations

import numpy as np

from minigrad.backend import get_array_module
from minigrad.kernels.reference import (
    attention_scores,
    check_attention,
    may_skip_masked,
    neginf_or,
)

BLOCK = 64  # keys per block (a Python-level constant, not part of the kernel signature)


def _blocks(q, k, v, mask, scale, is_causal, block):
    """(j0, j1) key ranges; with is_causal, blocks wholly in every query's future are skipped,
    unless q or those keys/values hold a NaN or inf (masking adds -inf, it does not hide NaN:
    PyTorch's NaN + -inf and 0 * inf stay NaN)."""
    L, S = q.shape[1], k.shape[1]
    stop = S
    if is_causal and S > L and may_skip_masked(q, k[:, L:], v[:, L:], mask, scale):
        stop = L
    return [(j0, min(j0 + block, stop)) for j0 in range(0, stop, block)]


def attention_forward(q, k, v, mask, scale, is_causal, block_size=None):
    check_attention("attention_forward", q, k, v, mask)
    xp = get_array_module(q)
    B, L, _ = q.shape
    Ev = v.shape[2]
    block = block_size or BLOCK
    m = xp.full((B, L, 1), -xp.inf, dtype=q.dtype)  # running row max
    l_ = xp.zeros((B, L, 1), dtype=q.dtype)  # running sum of exp(s - m)
    acc = xp.zeros((B, L, Ev), dtype=q.dtype)  # running sum of exp(s - m) v
    for j0, j1 in _blocks(q, k, v, mask, scale, is_causal, block):
        s = attention_scores(q, k[:, j0:j1], mask, scale, is_causal, j0)  # (B, L, blk)
        m_new = xp.maximum(m, s.max(axis=-1, keepdims=True))  # (B, L, 1)
        m_safe = neginf_or(m_new, 0.0)  # a row with no visible key yet stays at 0; NaN stays
        alpha = xp.exp(m - m_safe)  # rescales what was accumulated under the old max
        p = xp.exp(s - m_safe)  # (B, L, blk)
        l_ = l_ * alpha + p.sum(axis=-1, keepdims=True)
        acc = acc * alpha + p @ v[:, j0:j1]  # (B, L, Ev)
        m = m_new
    with np.errstate(divide="ignore"):
        lse = (neginf_or(m, 0.0) + xp.log(l_))[..., 0]  # (B, L); -inf when all masked
    out = acc / xp.where(l_ == 0, 1.0, l_)  # (B, L, Ev); 0 rows when all masked
    return out, lse.astype(q.dtype, copy=False)


def attention_backward(dout, q, k, v, out, lse, mask, scale, is_causal, block_size=None):
    check_attention("attention_backward", q, k, v, mask)
    xp = get_array_module(q)
    block = block_size or BLOCK
    lse_safe = neginf_or(lse, xp.inf)[..., None]  # (B, L, 1): P = 0 on fully masked rows
    D = (dout * out).sum(axis=-1, keepdims=True)  # (B, L, 1) = rowsum(P * dP)
    dq = xp.zeros_like(q)
    dk = xp.zeros_like(k)
    dv = xp.zeros_like(v)
    for j0, j1 in _blocks(q, k, v, mask, scale, is_causal, block):
        kb, vb = k[:, j0:j1], v[:, j0:j1]
        p = xp.exp(attention_scores(q, kb, mask, scale, is_causal, j0) - lse_safe)  # (B,L,blk)
        dv[:, j0:j1] = p.swapaxes(-1, -2) @ dout  # (B, blk, Ev)
        ds = p * (dout @ vb.swapaxes(-1, -2) - D)  # (B, L, blk)
        dq += (ds @ kb) * scale  # (B, L, E)
        dk[:, j0:j1] = (ds.swapaxes(-1, -2) @ q) * scale  # (B, blk, E)
    return dq, dk, dv
