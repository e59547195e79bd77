"""The deterministic half of tests/fuzz_native.py: every geometry argument of the conv and
pooling bindings swept over corner values, alone and in pairs, around a valid call; the
attention-rows ``i0`` likewise. Results are checked against naive loops in Python ints."""

from __future__ import annotations

import numpy as np

BIG = 2**63 - 1

# Random search rarely lands on "one huge stride, everything else valid", the shape of the
# crashes in issue 15, so every geometry slot is also swept deterministically over these values,
# alone and in pairs, around a valid baseline. Results are checked against naive loops in Python
# ints (no overflow possible), and invalid windows must raise.
CORNER_VALUES = [0, -1, 2**31, 2**62, BIG - 1, BIG, -(2**63)]


def corners(baseline: dict):
    names = list(baseline)
    yield dict(baseline)
    for i, a in enumerate(names):
        for va in CORNER_VALUES:
            yield {**baseline, a: va}
            for b in names[i + 1 :]:
                for vb in (BIG, 2**62, -1):
                    yield {**baseline, a: va, b: vb}


def naive_im2col(x, KH, KW, s, p, d, OH, OW):
    N, Cc, H, W = x.shape
    cols = np.zeros((N, Cc, KH, KW, OH, OW), x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            for oh in range(OH):
                for ow in range(OW):
                    ih, iw = oh * s[0] - p[0] + kh * d[0], ow * s[1] - p[1] + kw * d[1]
                    if 0 <= ih < H and 0 <= iw < W:
                        cols[:, :, kh, kw, oh, ow] = x[:, :, ih, iw]
    return cols


def naive_col2im(cols, x_shape, s, p, d):
    N, Cc, KH, KW, OH, OW = cols.shape
    H, W = x_shape[2:]
    dx = np.zeros(x_shape, cols.dtype)
    for kh in range(KH):
        for kw in range(KW):
            for oh in range(OH):
                for ow in range(OW):
                    ih, iw = oh * s[0] - p[0] + kh * d[0], ow * s[1] - p[1] + kw * d[1]
                    if 0 <= ih < H and 0 <= iw < W:
                        dx[:, :, ih, iw] += cols[:, :, kh, kw, oh, ow]
    return dx


def naive_maxpool(x, k, s, p, d, OH, OW):
    N, Cc, H, W = x.shape
    y = np.full((N, Cc, OH, OW), -np.inf, x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            for kh in range(k[0]):
                for kw in range(k[1]):
                    ih, iw = oh * s[0] - p[0] + kh * d[0], ow * s[1] - p[1] + kw * d[1]
                    if 0 <= ih < H and 0 <= iw < W:
                        y[:, :, oh, ow] = np.maximum(y[:, :, oh, ow], x[:, :, ih, iw])
    return y


def _invalid(k, s, p, d):
    return min(*k, *s, *d) < 1 or min(p) < 0


def sweep_C(C, call, close):
    """Deterministic corners of every geometry argument; returns the list of failures.
    (``call`` and ``close``: fuzz_native's, which run a call and compare results.)"""
    bad = []

    def expect(cond, what):
        if not cond:
            bad.append(what)

    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    base = dict(KH=2, KW=2, sH=1, sW=1, pH=1, pW=2, dH=1, dW=1)
    for g in corners(base):
        k, s, p, d = (g["KH"], g["KW"]), (g["sH"], g["sW"]), (g["pH"], g["pW"]), (g["dH"], g["dW"])
        ok, cols = call(C.im2col, x, *k, s, p, d)
        what = f"im2col(k={k}, s={s}, p={p}, d={d})"
        if ok:
            expect(not _invalid(k, s, p, d), what + " accepted an invalid window")
            if cols.size <= 10**5:
                expect(
                    close(cols, naive_im2col(x, *k, s, p, d, *cols.shape[-2:]), x.dtype),
                    what + " differs from the naive loops",
                )
        if ok and cols.size <= 10**5:
            ok2, dx = call(C.col2im, cols, x.shape, *k, s, p, d)
            expect(
                ok2 and close(dx, naive_col2im(cols, x.shape, s, p, d), x.dtype),
                "col2im, " + what + ": failed or differs from the naive loops",
            )
        else:
            for OH, OW in ((1, 1), (7, 1), (1, 7)):  # cols that the wrapped geometry might fit
                call(
                    C.col2im,
                    np.ones((2, 2, min(max(k[0], 1), 3), min(max(k[1], 1), 3), OH, OW)),
                    x.shape,
                    *k,
                    s,
                    p,
                    d,
                )

    base = dict(kH=2, kW=3, sH=1, sW=2, pH=1, pW=1, dH=1, dW=2)
    for g in corners(base):
        k, s, p, d = (g["kH"], g["kW"]), (g["sH"], g["sW"]), (g["pH"], g["pW"]), (g["dH"], g["dW"])
        for ceil in (False, True):
            what = f"maxpool2d_forward(k={k}, s={s}, p={p}, d={d}, ceil={ceil})"
            ok, r = call(C.maxpool2d_forward, x, k, s, p, d, ceil)
            if ok:
                expect(not _invalid(k, s, p, d), what + " accepted an invalid window")
                if r[0].size <= 10**5:
                    expect(
                        close(r[0], naive_maxpool(x, k, s, p, d, *r[0].shape[-2:]), x.dtype),
                        what + " differs from the naive loops",
                    )
                    ok2, dx = call(C.maxpool2d_backward, r[0], r[1], x.shape, k, s, p, d, ceil)
                    expect(ok2, "maxpool2d_backward refused the forward's own indices, " + what)
            else:
                call(
                    C.maxpool2d_backward,
                    np.ones((2, 2, 1, 1)),
                    np.zeros((2, 2, 1, 1), np.int64),
                    x.shape,
                    k,
                    s,
                    p,
                    d,
                    ceil,
                )
            what = what.replace("maxpool", "avgpool").replace(f", d={d}", "")
            for div in (None, 1, 0, -1, BIG):
                ok, y = call(C.avgpool2d_forward, x, k, s, p, ceil, True, div)
                if ok:
                    expect(not _invalid(k, s, p, (1, 1)), what + " accepted an invalid window")
                    expect(div is None or div > 0, what + f" accepted divisor_override={div}")
                ok, _ = call(
                    C.avgpool2d_backward,
                    y if ok else np.ones((2, 2, 1, 1)),
                    x.shape,
                    k,
                    s,
                    p,
                    ceil,
                    True,
                    div,
                )
                if ok:
                    expect(
                        div is None or div > 0,
                        f"avgpool2d_backward accepted divisor_override={div}",
                    )

    for i0 in CORNER_VALUES + [1, 2, 3, 4]:
        for mask in (None, np.zeros((4, 6)), np.zeros((2, 4, 6))):
            for causal in (False, True):
                sc = np.ones((2, 2, 5))
                ok, lse = call(C.attention_rows_forward, sc, mask, 1.0, i0, causal)
                mshape = None if mask is None else mask.shape
                what = f"attention_rows_forward(i0={i0}, mask={mshape}, causal={causal})"
                if ok:
                    expect(i0 >= 0 and (mask is None or i0 + 2 <= 4), what + " accepted i0")
                ok, _ = call(
                    C.attention_rows_backward,
                    np.ones((2, 2, 5)),
                    np.ones((2, 2, 5)),
                    np.zeros((2, 2)),
                    np.zeros((2, 2)),
                    mask,
                    1.0,
                    i0,
                    causal,
                )
                if ok:
                    expect(
                        i0 >= 0 and (mask is None or i0 + 2 <= 4),
                        what.replace("forward", "backward") + " accepted i0",
                    )
    return bad
