// conv_direct_impl.h: the loops of the direct convolution (conv_direct.cpp), written once
// with GCC vector types and compiled once per instruction set.
//
// conv_direct.cpp includes this file several times, each time inside its own namespace and
// with MG_VBYTES (the vector width in bytes) defined, once plainly (the portable build) and once
// under `#pragma GCC target("avx2,fma")` (and "avx512f"): the same source becomes SSE2, AVX2+FMA
// and AVX-512 code, and conv_direct.cpp picks one at run time with __builtin_cpu_supports.
// Only the standard headers conv_direct.cpp includes first are used here.
//
// Layout trick ("full-width rows"): for a stride-1 convolution of a zero-padded plane xp
// (Hp x Wp, row-major), the output pixel (oh, ow) is
//     y[oh, ow] = sum_{c, kh, kw} w[c, kh, kw] * xp[c, (oh + kh) * Wp + (ow + kw)],
// so with p = oh * Wp + ow every tap (kh, kw) is the SAME contiguous run of xp shifted by
// kh * Wp + kw.  Computing y over all p in [0, OH * Wp) (ow up to Wp - 1, not OW - 1) turns the
// convolution into contiguous vector loads and FMAs; the Wp - OW extra columns per row are
// computed and thrown away (forward only; they read wrapped pixels and are never stored).
//
// The weight gradient cannot throw lanes away (every product is summed), so it walks the
// output row by row and zeroes the lanes past OW with a select before multiplying (an inf or
// NaN pixel outside a tap's window must not reach that tap: 0 * inf would be NaN).

template <typename T>
struct Vec {
    typedef T type __attribute__((vector_size(MG_VBYTES)));
    static constexpr int L = MG_VBYTES / static_cast<int>(sizeof(T));
};

template <typename T>
MG_ALWAYS_INLINE typename Vec<T>::type vload(const T* p) {
    typename Vec<T>::type v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <typename T>
MG_ALWAYS_INLINE void vstore(T* p, const typename Vec<T>::type& v) {
    std::memcpy(p, &v, sizeof v);
}

// Output-pixel vectors per block in the forward kernel (the register tile is OB x U vectors).
constexpr int kU = MG_VBYTES >= 64 ? 4 : 2;

// yf[ob][p] = sum_{c, kh, kw} w[o0 + ob][c][kh][kw] * xp[c][p + kh*Wp + kw] for p in
// [0, Pr), Pr a multiple of U*L; xp planes are PS apart, yf rows Pr apart.
template <typename T, int OB>
MG_ALWAYS_INLINE void forward_tile(const T* xp, std::int64_t PS, const T* w, std::int64_t C,
                                   std::int64_t KH, std::int64_t KW, std::int64_t Wp, T* yf,
                                   std::int64_t Pr) {
    using V = typename Vec<T>::type;
    constexpr int L = Vec<T>::L;
    const std::int64_t CKK = C * KH * KW;
    for (std::int64_t p = 0; p < Pr; p += kU * L) {
        V acc[OB][kU];
        for (int ob = 0; ob < OB; ++ob)
            for (int u = 0; u < kU; ++u) acc[ob][u] = V{};
        for (std::int64_t c = 0; c < C; ++c) {
            const T* xc = xp + c * PS + p;
            const T* wc = w + c * KH * KW;
            for (std::int64_t kh = 0; kh < KH; ++kh) {
                for (std::int64_t kw = 0; kw < KW; ++kw) {
                    const T* s = xc + kh * Wp + kw;
                    V xv[kU];
                    for (int u = 0; u < kU; ++u) xv[u] = vload(s + u * L);
                    const std::int64_t k = kh * KW + kw;
                    for (int ob = 0; ob < OB; ++ob) {
                        const T wv = wc[ob * CKK + k];
                        for (int u = 0; u < kU; ++u) acc[ob][u] += xv[u] * wv;
                    }
                }
            }
        }
        for (int ob = 0; ob < OB; ++ob)
            for (int u = 0; u < kU; ++u) vstore(yf + ob * Pr + p + u * L, acc[ob][u]);
    }
}

template <typename T>
void forward_rows(int ob_count, const T* xp, std::int64_t PS, const T* w, std::int64_t C,
                  std::int64_t KH, std::int64_t KW, std::int64_t Wp, T* yf, std::int64_t Pr) {
    switch (ob_count) {  // the register tile needs OB at compile time
        case 1: forward_tile<T, 1>(xp, PS, w, C, KH, KW, Wp, yf, Pr); break;
        case 2: forward_tile<T, 2>(xp, PS, w, C, KH, KW, Wp, yf, Pr); break;
        case 3: forward_tile<T, 3>(xp, PS, w, C, KH, KW, Wp, yf, Pr); break;
        case 4: forward_tile<T, 4>(xp, PS, w, C, KH, KW, Wp, yf, Pr); break;
        case 5: forward_tile<T, 5>(xp, PS, w, C, KH, KW, Wp, yf, Pr); break;
        default: forward_tile<T, 6>(xp, PS, w, C, KH, KW, Wp, yf, Pr); break;
    }
}

// Weight-gradient tile: acc[ob][kw] (vectors) += dy[o0+ob][oh][ow..] * xp[c][(oh+kh)*Wp + ow+kw]
// over every output row of one sample; dy rows are DS apart (zero past OW), xp planes as above.
template <typename T, int OB, int KWC>
MG_ALWAYS_INLINE void wgrad_tile(typename Vec<T>::type (&acc)[OB][KWC], const T* dy,
                                 std::int64_t DRS, std::int64_t DPS, const T* xc,
                                 std::int64_t kh, std::int64_t kw0, std::int64_t OH,
                                 std::int64_t OW, std::int64_t Wp) {
    using V = typename Vec<T>::type;
    constexpr int L = Vec<T>::L;
    V lane;
    for (int i = 0; i < L; ++i) lane[i] = static_cast<T>(i);
    for (std::int64_t oh = 0; oh < OH; ++oh) {
        const T* xr = xc + (oh + kh) * Wp + kw0;
        const T* dr = dy + oh * DRS;
        for (std::int64_t ow = 0; ow < OW; ow += L) {
            V dv[OB];
            for (int ob = 0; ob < OB; ++ob) dv[ob] = vload(dr + ob * DPS + ow);
            const T rem = static_cast<T>(OW - ow);
            for (int j = 0; j < KWC; ++j) {
                V xv = vload(xr + ow + j);
                if (ow + L > OW) xv = lane < rem ? xv : V{};  // lanes past OW: exactly 0
                for (int ob = 0; ob < OB; ++ob) acc[ob][j] += dv[ob] * xv;
            }
        }
    }
}

// dw[ob][kw0 + j] += sum over this sample (horizontal sums of the vector accumulators).
template <typename T, int OB, int KWC>
MG_ALWAYS_INLINE void wgrad_block(T* out, std::int64_t out_stride, const T* dy, std::int64_t DRS,
                                  std::int64_t DPS, const T* xc, std::int64_t kh,
                                  std::int64_t kw0, std::int64_t OH, std::int64_t OW,
                                  std::int64_t Wp) {
    using V = typename Vec<T>::type;
    V acc[OB][KWC];
    for (int ob = 0; ob < OB; ++ob)
        for (int j = 0; j < KWC; ++j) acc[ob][j] = V{};
    wgrad_tile<T, OB, KWC>(acc, dy, DRS, DPS, xc, kh, kw0, OH, OW, Wp);
    for (int ob = 0; ob < OB; ++ob)
        for (int j = 0; j < KWC; ++j) {
            T s = T(0);
            for (int i = 0; i < Vec<T>::L; ++i) s += acc[ob][j][i];
            out[ob * out_stride + j] += s;
        }
}

// Tiles of at most 2 output channels x 5 taps of a kernel row (10 accumulators fit the 16
// AVX2 registers with the loads); wider kernels go 5 taps at a time.
constexpr int kWOB = 2, kWKW = 5;

template <typename T, int OB>
void wgrad_row_ob(T* out, std::int64_t out_stride, const T* dy, std::int64_t DRS,
                  std::int64_t DPS, const T* xc, std::int64_t kh, std::int64_t KW,
                  std::int64_t OH, std::int64_t OW, std::int64_t Wp) {
    for (std::int64_t kw0 = 0; kw0 < KW; kw0 += kWKW) {
        const std::int64_t n = std::min<std::int64_t>(kWKW, KW - kw0);
        T* o = out + kw0;
        switch (n) {
            case 1: wgrad_block<T, OB, 1>(o, out_stride, dy, DRS, DPS, xc, kh, kw0, OH, OW, Wp); break;
            case 2: wgrad_block<T, OB, 2>(o, out_stride, dy, DRS, DPS, xc, kh, kw0, OH, OW, Wp); break;
            case 3: wgrad_block<T, OB, 3>(o, out_stride, dy, DRS, DPS, xc, kh, kw0, OH, OW, Wp); break;
            case 4: wgrad_block<T, OB, 4>(o, out_stride, dy, DRS, DPS, xc, kh, kw0, OH, OW, Wp); break;
            default: wgrad_block<T, OB, 5>(o, out_stride, dy, DRS, DPS, xc, kh, kw0, OH, OW, Wp); break;
        }
    }
}

template <typename T>
void wgrad_row(int ob_count, T* out, std::int64_t out_stride, const T* dy, std::int64_t DRS,
               std::int64_t DPS, const T* xc, std::int64_t kh, std::int64_t KW, std::int64_t OH,
               std::int64_t OW, std::int64_t Wp) {
    if (ob_count >= 2)
        wgrad_row_ob<T, 2>(out, out_stride, dy, DRS, DPS, xc, kh, KW, OH, OW, Wp);
    else
        wgrad_row_ob<T, 1>(out, out_stride, dy, DRS, DPS, xc, kh, KW, OH, OW, Wp);
}

inline std::int64_t round_up(std::int64_t v, std::int64_t m) { return (v + m - 1) / m * m; }

// Thread id and count inside an OpenMP region (0 and 1 without OpenMP).
inline int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Zero-pad plane-by-plane: dst[c] (PS apart) = x[c] with pH rows / pW columns of zeros around.
template <typename T>
void pad_planes(const T* x, T* dst, std::int64_t C, std::int64_t H, std::int64_t W,
                std::int64_t pH, std::int64_t pW, std::int64_t PS) {
    const std::int64_t Wp = W + 2 * pW;
    std::fill(dst, dst + C * PS, T(0));
    for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t h = 0; h < H; ++h)
            std::memcpy(dst + c * PS + (h + pH) * Wp + pW, x + (c * H + h) * W, W * sizeof(T));
}

// y (N, O, OH, OW) = conv(x (N, C, H, W), w (O, C, KH, KW), padding) + b, stride 1.
// Tasks are (sample, block of up to 6 output channels); each is independent, so the result
// does not depend on the thread count.
template <typename T>
void conv_forward(const T* x, const T* w, const T* b, T* y, std::int64_t N, std::int64_t C,
                  std::int64_t H, std::int64_t W, std::int64_t O, std::int64_t KH,
                  std::int64_t KW, std::int64_t pH, std::int64_t pW, int threads) {
    constexpr int L = Vec<T>::L;
    constexpr int OBmax = 6;
    const std::int64_t Hp = H + 2 * pH, Wp = W + 2 * pW, OH = Hp - KH + 1, OW = Wp - KW + 1;
    const std::int64_t Pr = round_up(OH * Wp, kU * L);
    const std::int64_t PS = std::max(Pr + (KH - 1) * Wp + KW, Hp * Wp + L);
    const std::int64_t nob = (O + OBmax - 1) / OBmax, tasks = N * nob;
    const std::int64_t per_thread = C * PS + OBmax * Pr;
    std::vector<T> scratch(static_cast<std::size_t>(per_thread * threads));
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        T* xs = scratch.data() + thread_id() * per_thread;
        T* ys = xs + C * PS;
        std::int64_t last_n = -1;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (std::int64_t t = 0; t < tasks; ++t) {
            const std::int64_t n = t / nob, o0 = (t % nob) * OBmax;
            const int cnt = static_cast<int>(std::min<std::int64_t>(OBmax, O - o0));
            if (n != last_n) {
                pad_planes(x + n * C * H * W, xs, C, H, W, pH, pW, PS);
                last_n = n;
            }
            forward_rows<T>(cnt, xs, PS, w + o0 * C * KH * KW, C, KH, KW, Wp, ys, Pr);
            for (int j = 0; j < cnt; ++j) {
                T* yo = y + ((n * O + o0 + j) * OH) * OW;
                const T* src = ys + j * Pr;
                if (b) {
                    const T bj = b[o0 + j];
                    for (std::int64_t oh = 0; oh < OH; ++oh)
                        for (std::int64_t ow = 0; ow < OW; ++ow)
                            yo[oh * OW + ow] = src[oh * Wp + ow] + bj;
                } else {
                    for (std::int64_t oh = 0; oh < OH; ++oh)
                        std::memcpy(yo + oh * OW, src + oh * Wp, OW * sizeof(T));
                }
            }
        }
    }
}

// dw (O, C, KH, KW) = sum_n corr(dy[n] (O, OH, OW), x[n] (C, H, W) padded), stride 1.
// Tasks are (pair of output channels, input channel, kernel row), split into one contiguous
// range per thread; every thread walks the samples in order and adds each sample's sums, so
// each dw entry is summed in the same order whatever the thread count.
template <typename T>
void conv_weight_grad(const T* dy, const T* x, T* dw, std::int64_t N, std::int64_t C,
                      std::int64_t H, std::int64_t W, std::int64_t O, std::int64_t KH,
                      std::int64_t KW, std::int64_t pH, std::int64_t pW, int threads) {
    constexpr int L = Vec<T>::L;
    const std::int64_t Hp = H + 2 * pH, Wp = W + 2 * pW, OH = Hp - KH + 1, OW = Wp - KW + 1;
    const std::int64_t DRS = round_up(OW, L), DPS = OH * DRS;
    const std::int64_t PS = Hp * Wp + L + KW;
    const std::int64_t nob = (O + kWOB - 1) / kWOB, tasks = nob * C * KH;
    const std::int64_t per_thread = C * PS + O * DPS;
    std::fill(dw, dw + O * C * KH * KW, T(0));
    if (tasks < threads) threads = static_cast<int>(std::max<std::int64_t>(tasks, 1));
    std::vector<T> scratch(static_cast<std::size_t>(per_thread * threads));
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        const int tid = thread_id();
        const int nt = threads;
        const std::int64_t t0 = tasks * tid / nt, t1 = tasks * (tid + 1) / nt;
        T* xs = scratch.data() + tid * per_thread;
        T* ds = xs + C * PS;
        std::fill(ds, ds + O * DPS, T(0));
        for (std::int64_t n = 0; n < N && t0 < t1; ++n) {
            pad_planes(x + n * C * H * W, xs, C, H, W, pH, pW, PS);
            const T* dn = dy + n * O * OH * OW;
            for (std::int64_t o = 0; o < O; ++o)  // rows DRS apart, zero past OW
                for (std::int64_t oh = 0; oh < OH; ++oh)
                    std::memcpy(ds + o * DPS + oh * DRS, dn + (o * OH + oh) * OW,
                                OW * sizeof(T));
            for (std::int64_t t = t0; t < t1; ++t) {
                const std::int64_t kh = t % KH, c = (t / KH) % C, o0 = (t / KH / C) * kWOB;
                const int cnt = static_cast<int>(std::min<std::int64_t>(kWOB, O - o0));
                wgrad_row<T>(cnt, dw + ((o0 * C + c) * KH + kh) * KW, C * KH * KW,
                             ds + o0 * DPS, DRS, DPS, xs + c * PS, kh, KW, OH, OW, Wp);
            }
        }
    }
}
