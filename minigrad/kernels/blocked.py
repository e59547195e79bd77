"""The "blocked" variant of ``attention``: BLAS matmuls one block of query rows at a time,
with the softmax between them in C++ (``csrc/cpu/attention_rows.cpp``).

Same names and signatures as :mod:`minigrad.kernels.reference`. The ``cpp`` variant
(``attention.cpp``) does everything in C++ with FlashAttention's key tiles; its dot products
are SSE loops, several times below the machine's sgemm. Here the two big products per block
go to the BLAS NumPy links (what PyTorch's CPU attention also leans on), and only the
memory-bound softmax is native, one pass per row. Per block of ``R`` query rows::

    forward    s   = q[:, blk] @ k[:, :K]^T            (B, R, K)  BLAS; K = S, or the last
               P, lse = attention_rows_forward(s, ...)             visible key when causal
               out[:, blk] = P @ v[:, :K]                          BLAS
    backward   s   = q[:, blk] @ k[:, :K]^T,  dp = dout[:, blk] @ v[:, :K]^T      BLAS
               attention_rows_backward(s, dp, lse, D, ...)  s -> P, dp -> dS = scale P (dp - D)
               dv[:, :K] += P^T dout[:, blk];  dq[:, blk] = dS k[:, :K]
               dk[:, :K] += dS^T q[:, blk]

Only a (B, R, K) block of scores exists at a time: ``R`` is chosen so that a block holds at
most :data:`BLOCK_ELEMENTS` numbers (at least 16 rows), so memory stays bounded for long
sequences, and only ``lse`` (B, L) is kept for the backward. Causal blocks stop at the block's
last row, so the work above the diagonal of a causal mask is mostly skipped, unless an input
holds a NaN or inf: then every key is visited, so that NaN + (-inf) and 0 * inf stay NaN as in
PyTorch.
"""

from __future__ import annotations

import numpy as np

from minigrad.kernels.native import contiguous, load_C
from minigrad.kernels.reference import check_attention, may_skip_masked

# op -> the minigrad._C functions it calls (the row softmax of csrc/cpu/attention_rows.cpp).
ENTRY_POINTS = {"attention": ("attention_rows_forward", "attention_rows_backward")}

BLOCK_ELEMENTS = 1 << 22  # scores per block (4M: 16 MiB in float32)


def _rows_per_block(B, L, S, is_causal):
    R = max(16, min(L, BLOCK_ELEMENTS // max(1, B * S)))
    if is_causal:  # smaller blocks skip more of the masked upper triangle (8 blocks: ~56%)
        R = min(R, max(16, -(-L // 8)))
    return R


def _contig(a):
    return None if a is None else contiguous(a)


def attention_forward(q, k, v, mask, scale, is_causal):
    check_attention("attention_forward", q, k, v, mask)
    C = load_C()
    q, k, v, mask = (_contig(a) for a in (q, k, v, mask))
    B, L, _ = q.shape
    S, Ev = k.shape[1], v.shape[2]
    out = np.zeros((B, L, Ev), dtype=q.dtype)
    lse = np.full((B, L), -np.inf, dtype=q.dtype)
    if S == 0 or L == 0:
        return out, lse
    kT = np.ascontiguousarray(k.swapaxes(-1, -2))  # (B, E, S): a copy runs faster in BLAS
    R = _rows_per_block(B, L, S, is_causal)
    skip = is_causal and may_skip_masked(q, k, v, mask, scale)  # NaN/inf: see every key
    for i0 in range(0, L, R):
        i1 = min(L, i0 + R)
        K = min(S, i1) if skip else S  # keys any row of this block can see
        s = np.matmul(q[:, i0:i1], kT[:, :, :K])  # (B, R, K) raw scores
        lse[:, i0:i1] = C.attention_rows_forward(s, mask, float(scale), i0, bool(is_causal))
        out[:, i0:i1] = np.matmul(s, v[:, :K])  # s now holds P
    return out, lse


def attention_backward(dout, q, k, v, out, lse, mask, scale, is_causal):
    check_attention("attention_backward", q, k, v, mask)
    C = load_C()
    dout, q, k, v, out, mask = (_contig(a) for a in (dout, q, k, v, out, mask))
    B, L, E = q.shape
    S = k.shape[1]
    dq = np.zeros_like(q)
    dk = np.zeros_like(k)
    dv = np.zeros_like(v)
    if S == 0 or L == 0:
        return dq, dk, dv
    D = (dout * out).sum(axis=-1)  # (B, L) = rowsum(P * dP)
    kT = np.ascontiguousarray(k.swapaxes(-1, -2))  # (B, E, S)
    vT = np.ascontiguousarray(v.swapaxes(-1, -2))  # (B, Ev, S)
    R = _rows_per_block(B, L, S, is_causal)
    skip = is_causal and may_skip_masked(q, k, v, mask, scale)
    for i0 in range(0, L, R):
        i1 = min(L, i0 + R)
        K = min(S, i1) if skip else S
        s = np.matmul(q[:, i0:i1], kT[:, :, :K])  # (B, R, K)
        dp = np.matmul(dout[:, i0:i1], vT[:, :, :K])  # (B, R, K)
        C.attention_rows_backward(
            s,
            dp,
            np.ascontiguousarray(lse[:, i0:i1]),
            np.ascontiguousarray(D[:, i0:i1]),
            mask,
            float(scale),
            i0,
            bool(is_causal),
        )  # s -> P, dp -> dS (scaled)
        dv[:, :K] += np.matmul(s.swapaxes(-1, -2), dout[:, i0:i1])
        dq[:, i0:i1] = np.matmul(dp, k[:, :K])
        dk[:, :K] += np.matmul(dp.swapaxes(-1, -2), q[:, i0:i1])
    return dq, dk, dv
