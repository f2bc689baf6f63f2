// Fused LSTM over a whole sequence, forward and hand-written backward (BPTT), for every variant of
// rnnlab.cells.lstm (vanilla, peephole, cifg, nig, nfg, nog, niaf, noaf), proj_size, layer_norm, and the
// depth-gated LSTM of rnnlab.cells.depth_gated. One implementation: the variant is a set of flags.
//
// Forward, step t (rnnlab.cells.lstm.LSTMMath.step, then the engine's state mixing):
//   a      = gx_t[:GH] + LN(h_{t-1} W_hh^T) * ln_hh + b_hh         (B, GH), gate blocks in i, f, g, o order
//   a_i   += p_i * c_{t-1};  a_f += p_f * c_{t-1}                     (peephole)
//   f      = sigma(a_f)        (1 without forget gate, nfg)
//   i      = sigma(a_i)        (1 - f for cifg, 1 for nig)
//   g      = tanh(a_g)         (a_g for niaf)
//   d      = sigma(gx_d + w_cd * c_{t-1} + w_ld * c^L_t)             (depth-gated; c^L_t = lower layer's cell)
//   c~     = i * g + f * c_{t-1} (+ d * c^L_t)
//   y      = tanh(LN(c~))      (LN only with layer_norm; no tanh for noaf)
//   o      = sigma(a_o + p_o * c~)   (1 for nog)
//   r      = o * y;   h~ = r W_hr^T with proj_size, else h~ = r
//   c_t    = k_c c_{t-1} + (1 - k_c) c~;   h_t = k_h h_{t-1} + (1 - k_h) h~       (common.h: Keep)
//
// Backward, step t, from dh_t (B, P) and dc_t (B, H) (the totals over every use of h_t, c_t):
//   dh~ = (1 - k_h) dh_t,  dh_{t-1} = k_h dh_t + dA_t W_hh        (one GEMM per step)
//   dr  = dh~ W_hr (proj; one GEMM per step) else dh~;   dW_hr = sum_t dh~_t^T r_t   (one GEMM after)
//   do  = dr * y;  dy = dr * o;  dLN = dy * (1 - y^2);  dc~ = (1 - k_c) dc_t + LN'(dLN) + da_o * p_o
//   da_o = do * o (1 - o);  da_g = dc~ * i * (1 - g^2);  di = dc~ * g;  df = dc~ * c_{t-1} (- di for cifg)
//   da_i = di * i (1 - i);  da_f = df * f (1 - f)
//   dd = dc~ * c^L;  da_d = dd * d (1 - d);  dc^L = dc~ * d + da_d * w_ld          (depth-gated)
//   dc_{t-1} = k_c dc_t + dc~ * f + da_i * p_i + da_f * p_f + da_d * w_cd
//   dgx_t = [da | da_d | dc^L];  dA_t = LN'(da) (= da without layer_norm)
//   dW_hh = sum_t dA_t^T h_{t-1}: one GEMM over (T*B) after the loop; vector parameters (biases, gains,
//   peepholes, depth weights) are summed per thread during the loop.
#include "common.h"

namespace rnnlab {
namespace {

// The flags (kHasI, ..., kLayerNorm), the order of the inputs (GX, H0, C0, W_HH, ...) and of the aux slots
// (LENGTHS, MASK_H, MASK_C, ..., X): generated from rnnlab/engine/ops.py (rnnlab_layout.h).
using namespace layout;
using namespace layout::lstm;

struct Spec {
  int64_t T, B, H, P, GH, Dgx, GW;
  int64_t oi, of, og, oo;  // offset of each gate block in a row of gates; -1 if the gate is absent
  bool has_i, has_f, has_o, cifg, niaf, noaf, peep, depth, ln, proj;

  Spec(int64_t T_, int64_t B_, int64_t Dgx_, const Tensor& w_hh, bool proj_, int64_t flags, int64_t H_)
      : T(T_), B(B_), H(H_), P(w_hh.size(1)), GH(w_hh.size(0)), Dgx(Dgx_) {
    has_i = flags & kHasI;
    has_f = flags & kHasF;
    has_o = flags & kHasO;
    cifg = flags & kCifg;
    niaf = flags & kNiaf;
    noaf = flags & kNoaf;
    peep = flags & kPeephole;
    depth = flags & kDepth;
    ln = flags & kLayerNorm;
    proj = proj_;
    int64_t next = 0;
    oi = has_i ? (next++) * H : -1;
    of = has_f ? (next++) * H : -1;
    og = (next++) * H;
    oo = has_o ? (next++) * H : -1;
    TORCH_CHECK(next * H == GH, "rnnlab lstm: weight_hh has ", GH, " rows, expected ", next * H);
    GW = depth ? GH + 2 * H : GH;  // gates row: [i f g o | d | c^L]
    TORCH_CHECK(Dgx == (depth ? GH + 2 * H : GH), "rnnlab lstm: gx width ", Dgx, " does not match the cell");
    TORCH_CHECK(proj || P == H, "rnnlab lstm: weight_hh has ", P, " columns, expected ", H);
  }

  // the vanilla cell: every gate, both activations, no peephole, coupling or depth gate
  bool plain() const { return has_i && has_f && has_o && !cifg && !niaf && !noaf && !peep && !depth; }
};

// What the pointwise math of a row reads besides the row's own data: parameters (or rows of constants
// standing in for absent ones), gate offsets and the variant's switches as 0/1 numbers.
template <typename T> struct RowArgs {
  int64_t H, GH;
  int64_t oi, of, og, oo;
  const T *bias, *ln_hh, *p_i, *p_f, *p_o, *lnc_w, *lnc_b, *w_cd, *w_ld, *ones, *zeros;
  T has_i, has_f, has_o, cifg, niaf, noaf;  // blends like a * x + (1 - a) * y vectorise, selects do not
};

template <typename T> RowArgs<T> row_args(const Spec& s, const OptTensors& in, const ConstRows<T>& c) {
  RowArgs<T> a;
  a.H = s.H;
  a.GH = s.GH;
  a.oi = s.oi;
  a.of = s.of;
  a.og = s.og;
  a.oo = s.oo;
  a.ones = c.ones.data();
  a.zeros = c.zeros.data();
  a.bias = or_const(get(in, B_HH), a.zeros);
  a.ln_hh = ptr_or_null<T>(get(in, LN_HH));
  const T* peep = ptr_or_null<T>(get(in, PEEPHOLE));
  a.p_i = peep ? peep : a.zeros;
  a.p_f = peep ? peep + s.H : a.zeros;
  a.p_o = peep ? peep + 2 * s.H : a.zeros;
  a.lnc_w = or_const(get(in, LN_CELL_W), a.ones);
  a.lnc_b = or_const(get(in, LN_CELL_B), a.zeros);
  const T* wdep = ptr_or_null<T>(get(in, W_DEPTH));
  a.w_cd = wdep ? wdep : a.zeros;
  a.w_ld = wdep ? wdep + s.H : a.zeros;
  a.has_i = s.has_i;
  a.has_f = s.has_f;
  a.has_o = s.has_o;
  a.cifg = s.cifg;
  a.niaf = s.niaf;
  a.noaf = s.noaf;
  return a;
}

// A gate block within a row: row + offset, or a row of constants when the variant has no such gate.
template <typename T> inline const T* block(const T* row, int64_t offset, const T* absent) {
  return offset >= 0 ? row + offset : absent;
}
template <typename T> inline T* block(T* row, int64_t offset, T* absent) { return offset >= 0 ? row + offset : absent; }

// Forward of one row, one pass over the H units (two with layer norm, which needs the statistics of c~).
// z: the raw recurrent product of the row (GH,) (it may be g itself); x: gx row; g: gates row (GW,), out:
// activated i, f, g, o (+ d, c^L); cp: c_{t-1}; cn: c~ out; out: r = o y out; sink (H,) takes absent gates.
// PLAIN: the vanilla cell (every gate, no peephole, no coupling, both activations): the same math without the
// blends and the reads of constant rows that let one loop serve every variant.
template <typename T, bool LN, bool DEPTH, bool PLAIN>
RNNLAB_INLINE void forward_row(const RowArgs<T>& a, const T* x, const T* z, T* g, const T* cp, T* cn, T* out,
                               T* sink) {
  const int64_t H = a.H;
  const T *zi = block(z, a.oi, a.zeros), *zf = block(z, a.of, a.zeros), *zg = z + a.og, *zo = block(z, a.oo, a.zeros);
  const T *xi = block(x, a.oi, a.zeros), *xf = block(x, a.of, a.zeros), *xg = x + a.og, *xo = block(x, a.oo, a.zeros);
  const T *bi = block(a.bias, a.oi, a.zeros), *bf = block(a.bias, a.of, a.zeros), *bg = a.bias + a.og,
          *bo = block(a.bias, a.oo, a.zeros);
  T *gi = block(g, a.oi, sink), *gf = block(g, a.of, sink), *gg = g + a.og, *go = block(g, a.oo, sink);
  T mi = 0, ri = 1, mf = 0, rf = 1, mg = 0, rg = 1, mo = 0, ro = 1;
  const T *ni = a.ones, *nf = a.ones, *ng = a.ones, *no = a.ones;
  if constexpr (LN) {  // per gate block: (z - mean) * rstd * gain
    if (a.oi >= 0) ln_stats(zi, H, mi, ri), ni = a.ln_hh + a.oi;
    if (a.of >= 0) ln_stats(zf, H, mf, rf), nf = a.ln_hh + a.of;
    ln_stats(zg, H, mg, rg), ng = a.ln_hh + a.og;
    if (a.oo >= 0) ln_stats(zo, H, mo, ro), no = a.ln_hh + a.oo;
  }
  const T has_i = a.has_i, has_f = a.has_f, has_o = a.has_o, cifg = a.cifg, niaf = a.niaf, noaf = a.noaf;
  const T *p_i = a.p_i, *p_f = a.p_f, *p_o = a.p_o, *w_cd = a.w_cd, *w_ld = a.w_ld;
  const T *xd = x + a.GH, *xl = x + a.GH + H;
  T *gd = g + a.GH, *gl = g + a.GH + H;
#pragma omp simd
  for (int64_t u = 0; u < H; ++u) {
    const T c0 = cp[u];
    T ai, af, ag, ao;
    if constexpr (LN) {
      ai = xi[u] + (zi[u] - mi) * ri * ni[u] + bi[u];
      af = xf[u] + (zf[u] - mf) * rf * nf[u] + bf[u];
      ag = xg[u] + (zg[u] - mg) * rg * ng[u] + bg[u];
      ao = xo[u] + (zo[u] - mo) * ro * no[u] + bo[u];
    } else {
      ai = xi[u] + zi[u] + bi[u];
      af = xf[u] + zf[u] + bf[u];
      ag = xg[u] + zg[u] + bg[u];
      ao = xo[u] + zo[u] + bo[u];
    }
    T f, i, gv;
    if constexpr (PLAIN) {
      f = sigmoid(af);
      i = sigmoid(ai);
      gv = fast_tanh(ag);
    } else {
      f = has_f * sigmoid(af + p_f[u] * c0) + (T(1) - has_f);
      i = cifg * (T(1) - f) + (T(1) - cifg) * (has_i * sigmoid(ai + p_i[u] * c0) + (T(1) - has_i));
      gv = niaf * ag + (T(1) - niaf) * fast_tanh(ag);
    }
    T c = i * gv + f * c0;
    if constexpr (DEPTH) {
      const T d = sigmoid(xd[u] + w_cd[u] * c0 + w_ld[u] * xl[u]);
      gd[u] = d;
      gl[u] = xl[u];
      c += d * xl[u];
    }
    gi[u] = i;
    gf[u] = f;
    gg[u] = gv;
    cn[u] = c;
    if constexpr (LN) {
      go[u] = ao;  // the output gate waits for the statistics of c~
    } else if constexpr (PLAIN) {
      const T o = sigmoid(ao);
      go[u] = o;
      out[u] = o * fast_tanh(c);
    } else {
      const T y = noaf * c + (T(1) - noaf) * fast_tanh(c);
      const T o = has_o * sigmoid(ao + p_o[u] * c) + (T(1) - has_o);
      go[u] = o;
      out[u] = o * y;
    }
  }
  if constexpr (LN) {  // y = tanh(LN(c~))
    T mc_, rc_;
    ln_stats(cn, H, mc_, rc_);
    const T mc = mc_, rc = rc_;
    const T *lw = a.lnc_w, *lb = a.lnc_b;
#pragma omp simd
    for (int64_t u = 0; u < H; ++u) {
      const T ca = (cn[u] - mc) * rc * lw[u] + lb[u];
      const T y = noaf * ca + (T(1) - noaf) * fast_tanh(ca);
      const T o = has_o * sigmoid(go[u] + p_o[u] * cn[u]) + (T(1) - has_o);
      go[u] = o;
      out[u] = o * y;
    }
  }
}

// Backward of one row (see the top of the file). dr: d r (H,); kc: keep factors of c (zeros without
// mixing); dcr: in dc_t, out dc_{t-1}; dx: gx gradient row (Dgx,); dct (H,) out: dc~ (for the parameter
// gradients); sink (H,) takes the gradients of absent gates. Layer norm of the cell: dln_cell (2H,) += [dγ, dβ].
template <typename T, bool LN, bool DEPTH, bool PLAIN>
RNNLAB_INLINE void backward_row(const RowArgs<T>& a, const T* g, const T* cp, const T* cn, const T* dr, const T* kc,
                                T* dcr, T* dx, T* dct, T* sink, double* dln_cell) {
  const int64_t H = a.H;
  const T *gi = block(g, a.oi, a.ones), *gf = block(g, a.of, a.ones), *gg = g + a.og, *go = block(g, a.oo, a.ones);
  T *dxi = block(dx, a.oi, sink), *dxf = block(dx, a.of, sink), *dxg = dx + a.og, *dxo = block(dx, a.oo, sink);
  const T cifg = a.cifg, niaf = a.niaf, noaf = a.noaf;
  const T *p_i = a.p_i, *p_f = a.p_f, *p_o = a.p_o, *w_cd = a.w_cd, *w_ld = a.w_ld;
  const T *gd = g + a.GH, *gl = g + a.GH + H;
  T *dxd = dx + a.GH, *dxl = dx + a.GH + H;
  T mc = 0, rc = 1;
  if constexpr (LN) {  // output first, then back through the cell's layer norm into dct
    ln_stats(cn, H, mc, rc);
    const T m = mc, r = rc;
    const T *lw = a.lnc_w, *lb = a.lnc_b;
#pragma omp simd
    for (int64_t u = 0; u < H; ++u) {
      const T ca = (cn[u] - m) * r * lw[u] + lb[u];
      const T y = noaf * ca + (T(1) - noaf) * fast_tanh(ca);
      const T o = go[u];
      const T dy = dr[u] * o;
      dxo[u] = dr[u] * y * o * (T(1) - o);
      dct[u] = dy * (T(1) - (T(1) - noaf) * y * y);
    }
    for (int64_t u = 0; u < H; ++u) dln_cell[H + u] += static_cast<double>(dct[u]);
    ln_backward(cn, H, m, r, lw, dct, dct, dln_cell);
  }
  if constexpr (PLAIN && !LN && !DEPTH) {
#pragma omp simd
    for (int64_t u = 0; u < H; ++u) {
      const T y = fast_tanh(cn[u]);
      const T o = go[u];
      dxo[u] = dr[u] * y * o * (T(1) - o);
      const T k = kc[u];
      const T d = (T(1) - k) * dcr[u] + dr[u] * o * (T(1) - y * y);  // dc~
      const T f = gf[u], i = gi[u], gv = gg[u];
      dxg[u] = d * i * (T(1) - gv * gv);
      dxi[u] = d * gv * i * (T(1) - i);
      dxf[u] = d * cp[u] * f * (T(1) - f);
      dcr[u] = k * dcr[u] + d * f;
      dct[u] = d;
    }
    return;
  }
#pragma omp simd
  for (int64_t u = 0; u < H; ++u) {
    const T c = cn[u];
    T dca;
    if constexpr (LN) {
      dca = dct[u];
    } else {
      const T y = noaf * c + (T(1) - noaf) * fast_tanh(c);
      const T o = go[u];
      dxo[u] = dr[u] * y * o * (T(1) - o);
      dca = dr[u] * o * (T(1) - (T(1) - noaf) * y * y);
    }
    const T k = kc[u];
    const T d = (T(1) - k) * dcr[u] + dca + dxo[u] * p_o[u];  // dc~
    const T f = gf[u];
    const T i = cifg * (T(1) - f) + (T(1) - cifg) * gi[u];
    const T gv = gg[u];
    dxg[u] = d * i * (T(1) - (T(1) - niaf) * gv * gv);
    const T di = d * gv;
    const T df = d * cp[u] - cifg * di;
    const T dai = di * i * (T(1) - i);
    const T daf = df * f * (T(1) - f);
    dxi[u] = dai;
    dxf[u] = daf;
    T dcp = k * dcr[u] + d * f + dai * p_i[u] + daf * p_f[u];
    if constexpr (DEPTH) {
      const T dd = gd[u];
      const T dad = d * gl[u] * dd * (T(1) - dd);
      dxd[u] = dad;
      dxl[u] = d * dd + dad * w_ld[u];
      dcp += dad * w_cd[u];
    }
    dcr[u] = dcp;
    dct[u] = d;
  }
}

// Forward. Returns outputs [hseq (T,B,P), h_T (B,P), c_T (B,H), cseq (T,B,H) or empty] and, with save, the
// buffers the backward needs [cseq, G (T,B,GW) activated gates, C~ (T,B,H) pre-mixing cell (mixing only),
// R (T,B,H) pre-projection output (proj only), Z (T,B,GH) raw recurrent products (layer_norm only)].
template <typename T>
Outputs forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t H_, bool all_states,
                double zoneout_rate, bool save) {
  const Tensor w_hh_t = *get(in, W_HH);
  const auto w_hr_o = get(in, W_HR);
  const auto [steps, batch, width, gx_t] = input_dims(get(in, GX), aux, X);
  const Spec s(steps, batch, width, w_hh_t, w_hr_o.has_value(), flags, H_);
  const int64_t T_ = s.T, B = s.B, H = s.H, P = s.P, GH = s.GH, GW = s.GW, Dgx = s.Dgx;
  StepInput<T> input = step_input<T>(get(in, GX), aux, X);
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* c0 = get(in, C0)->data_ptr<T>();
  const T* w_hr = ptr_or_null<T>(w_hr_o);
  const ConstRows<T> consts(std::max(P, GH));
  const RowArgs<T> a = row_args<T>(s, in, consts);
  const Keep<T> keep_h = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, P);
  const Keep<T> keep_c = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_C), zoneout_rate, B, H);
  const bool mix = keep_h.any() || keep_c.any();

  // Buffers: with save, one slice per step (kept for the backward); without, one reused slice.
  const int64_t n_keep = save ? T_ : 1;
  const auto opts = gx_t.options();
  // the buffers kept for the backward come from the pool (common.h: pooled_empty), what the caller gets does not
  Tensor hseq_t = at::empty({T_, B, P}, opts);
  Tensor cseq_t = save ? pooled_empty({T_, B, H}, opts) : at::empty({all_states ? T_ : 2, B, H}, opts);
  Tensor G_t = pooled_empty({n_keep, B, GW}, opts);
  Tensor Ct_t = mix ? pooled_empty({n_keep, B, H}, opts) : none_tensor(gx_t);
  Tensor R_t = s.proj ? pooled_empty({n_keep, B, H}, opts) : none_tensor(gx_t);
  Tensor Z_t = s.ln ? pooled_empty({n_keep, B, GH}, opts) : none_tensor(gx_t);
  T* hseq = hseq_t.data_ptr<T>();
  T* cseq = cseq_t.data_ptr<T>();
  const int64_t c_slots = cseq_t.size(0);
  const int64_t M = std::max(P, H);
  ThreadBuffers tb((M + 2 * H) * sizeof(T), 0);

  const PackedB<T> W_T(w_hh_t.data_ptr<T>(), P, P, GH, true, T_ * B);  // W_hh^T (P, GH)
  std::optional<PackedB<T>> Whr_T;
  if (s.proj) Whr_T.emplace(w_hr, H, H, P, true, T_ * B);  // W_hr^T (H, P)
  auto row = s.ln ? (s.depth ? &forward_row<T, true, true, false> : &forward_row<T, true, false, false>)
                  : (s.depth ? &forward_row<T, false, true, false> : &forward_row<T, false, false, false>);
  if (s.plain()) row = s.ln ? &forward_row<T, true, false, true> : &forward_row<T, false, false, true>;
  const double flops_per_row = 2.0 * P * GH + (s.proj ? 2.0 * H * P : 0.0) + 30.0 * GW;

  for (int64_t t = 0; t < T_; ++t) {
    const int64_t slot = save ? t : 0;
    T* Gt = G_t.data_ptr<T>() + slot * B * GW;
    T* Zt = s.ln ? Z_t.data_ptr<T>() + slot * B * GH : nullptr;
    T* Rt = s.proj ? R_t.data_ptr<T>() + slot * B * H : nullptr;
    const T* hprev = t ? hseq + (t - 1) * B * P : h0;
    const T* cprev = t ? cseq + ((t - 1) % c_slots) * B * H : c0;
    T* ct = cseq + (t % c_slots) * B * H;
    T* ctil = mix ? Ct_t.data_ptr<T>() + slot * B * H : ct;  // c~ before mixing (c_t itself without mixing)
    T* ht = hseq + t * B * P;
    const T* gxt = input.at(t);

    for_step_rows(B, flops_per_row, W_T.bytes(), [&](int64_t r0, int64_t r1, int thread) {
      const int64_t n = r1 - r0;
      // recurrent product (n, GH) = h_{t-1} (n, P) W_hh^T (P, GH): into the gates (or Z for layer norm)
      W_T.multiply(n, hprev + r0 * P, P, s.ln ? Zt + r0 * GH : Gt + r0 * GW, s.ln ? GH : GW, false, nullptr, false);
      T* kbuf = tb.rows<T>(thread);  // keep factors (M,)
      T* rbuf = kbuf + M;            // r when it must still be mixed into h_t (H,)
      T* sink = rbuf + H;            // absent gates (H,)
      for (int64_t b = r0; b < r1; ++b) {
        T* g = Gt + b * GW;
        const T* cp = cprev + b * H;
        T* cn = ctil + b * H;
        T* out = s.proj ? Rt + b * H : (mix ? rbuf : ht + b * P);
        row(a, gxt + b * Dgx, s.ln ? Zt + b * GH : g, g, cp, cn, out, sink);
        if (mix) {  // c_t = k c_{t-1} + (1 - k) c~;  h_t = k h_{t-1} + (1 - k) r  (after the projection if any)
          T* c_out = ct + b * H;
          keep_c.row(t, b, kbuf);
#pragma omp simd
          for (int64_t u = 0; u < H; ++u) c_out[u] = kbuf[u] * cp[u] + (T(1) - kbuf[u]) * cn[u];
          if (!s.proj) {
            const T* hp = hprev + b * P;
            T* hn = ht + b * P;
            keep_h.row(t, b, kbuf);
#pragma omp simd
            for (int64_t u = 0; u < P; ++u) hn[u] = kbuf[u] * hp[u] + (T(1) - kbuf[u]) * rbuf[u];
          }
        }
      }
      if (s.proj) {  // h~ (n, P) = r (n, H) W_hr^T (H, P), then mixing
        Whr_T->multiply(n, Rt + r0 * H, H, ht + r0 * P, P, false, nullptr, false);
        if (mix) {
          for (int64_t b = r0; b < r1; ++b) {
            const T* hp = hprev + b * P;
            T* hn = ht + b * P;
            keep_h.row(t, b, kbuf);
#pragma omp simd
            for (int64_t u = 0; u < P; ++u) hn[u] = kbuf[u] * hp[u] + (T(1) - kbuf[u]) * hn[u];
          }
        }
      }
    }, false);
  }

  // final states: the last step (a finished sequence kept its state since its end)
  Tensor hT = hseq_t[T_ - 1].clone();
  Tensor cT = cseq_t[(T_ - 1) % c_slots].clone();
  std::vector<Tensor> outputs{hseq_t, hT, cT, all_states ? cseq_t : none_tensor(gx_t)};
  std::vector<Tensor> saved;
  if (save) saved = {cseq_t, G_t, Ct_t, R_t, Z_t};
  return {outputs, saved};
}

// Backward. grads: [d hseq (T,B,P), d h_T, d c_T, d cseq (T,B,H)], each may be None. saved: [hseq] + the
// forward's saved list. Returns the gradients of `in` (an empty tensor where an input has none).
template <typename T>
std::vector<Tensor> backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                             const OptTensors& aux, int64_t flags, int64_t H_, double zoneout_rate) {
  const Tensor gx_t = *get(in, GX), w_hh_t = *get(in, W_HH);
  const auto w_hr_o = get(in, W_HR);
  const Spec s(gx_t.size(0), gx_t.size(1), gx_t.size(2), w_hh_t, w_hr_o.has_value(), flags, H_);
  const int64_t T_ = s.T, B = s.B, H = s.H, P = s.P, GH = s.GH, GW = s.GW, Dgx = s.Dgx;
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* c0 = get(in, C0)->data_ptr<T>();
  const T* w_hr = ptr_or_null<T>(w_hr_o);
  const auto bias_o = get(in, B_HH), ln_hh_o = get(in, LN_HH), peep_o = get(in, PEEPHOLE);
  const auto lnc_w_o = get(in, LN_CELL_W), lnc_b_o = get(in, LN_CELL_B), wdep_o = get(in, W_DEPTH);
  const ConstRows<T> consts(std::max(P, GH));
  const RowArgs<T> a = row_args<T>(s, in, consts);
  const Keep<T> keep_h = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, P);
  const Keep<T> keep_c = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_C), zoneout_rate, B, H);
  const bool mix = keep_h.any() || keep_c.any();

  const T* hseq = saved[0].data_ptr<T>();
  const T* cseq = saved[1].data_ptr<T>();
  const T* G = saved[2].data_ptr<T>();
  const T* Ct = mix ? saved[3].data_ptr<T>() : cseq;  // c~ of every step
  const T* R = s.proj ? saved[4].data_ptr<T>() : nullptr;
  const T* Z = s.ln ? saved[5].data_ptr<T>() : nullptr;  // raw recurrent products

  const auto d_hseq_o = get(grads, 0), d_hT_o = get(grads, 1), d_cT_o = get(grads, 2), d_cseq_o = get(grads, 3);
  const T* d_hseq = ptr_or_null<T>(d_hseq_o);
  const T* d_cseq = ptr_or_null<T>(d_cseq_o);

  const auto opts = gx_t.options();
  Tensor dgx_t = pooled_empty({T_, B, Dgx}, opts);
  Tensor dh_a = d_hT_o ? d_hT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, P}, opts);  // dh_t carried
  Tensor dh_b = at::empty({B, P}, opts);
  Tensor dc_t = d_cT_o ? d_cT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, H}, opts);  // dc_t, in place
  Tensor DHt_t = s.proj ? pooled_empty({T_, B, P}, opts) : none_tensor(gx_t);  // dh~ per step
  Tensor dR_t = s.proj ? at::empty({B, H}, opts) : none_tensor(gx_t);
  T* dgx = dgx_t.data_ptr<T>();
  T* dc = dc_t.data_ptr<T>();
  // gradient of the recurrent product: its own buffer with layer norm, else the gate columns of dgx
  Tensor dZ_t = s.ln ? pooled_empty({T_, B, GH}, opts) : none_tensor(gx_t);
  T* dA = s.ln ? dZ_t.data_ptr<T>() : dgx;
  const int64_t ldA = s.ln ? GH : Dgx;

  // per-thread accumulators of the vector parameters, the bias too (summed over the rows of dA while they are
  // in cache, instead of another pass over the whole dgx after the loop)
  const int64_t a_lnhh = 0, a_peep = GH, a_lnc = GH + 3 * H, a_dep = GH + 5 * H, a_bias = GH + 7 * H;
  const int64_t M = std::max(P, H);
  ThreadBuffers tb((2 * M + 2 * H) * sizeof(T), 2 * GH + 7 * H);

  const PackedB<T> Wp(w_hh_t.data_ptr<T>(), P, GH, P, false, T_ * B);  // W_hh (GH, P)
  std::optional<PackedB<T>> Whr;
  if (s.proj) Whr.emplace(w_hr, H, P, H, false, T_ * B);  // W_hr (P, H)
  auto row = s.ln ? (s.depth ? &backward_row<T, true, true, false> : &backward_row<T, true, false, false>)
                  : (s.depth ? &backward_row<T, false, true, false> : &backward_row<T, false, false, false>);
  if (s.plain()) row = s.ln ? &backward_row<T, true, false, true> : &backward_row<T, false, false, true>;
  const double flops_per_row = 2.0 * P * GH + (s.proj ? 2.0 * H * P : 0.0) + 40.0 * GW;

  for (int64_t t = T_ - 1; t >= 0; --t) {
    T* dh = dh_a.data_ptr<T>();   // dh_t (B, P)
    T* dhn = dh_b.data_ptr<T>();  // dh_{t-1} being built
    const T* cprev = t ? cseq + (t - 1) * B * H : c0;
    const T* ctil = Ct + t * B * H;
    const T* Gt = G + t * B * GW;
    T* dxt = dgx + t * B * Dgx;
    const T* dhs = d_hseq ? d_hseq + t * B * P : nullptr;
    // h path: dh~ = (1 - k_h) dh_t, dh_{t-1} starts as k_h dh_t (overwritten by the GEMM if no mixing)
    auto split_h = [&](int64_t b, T* kbuf, T* dht_row) {
      T* d = dh + b * P;
      if (dhs) {
#pragma omp simd
        for (int64_t u = 0; u < P; ++u) d[u] += dhs[b * P + u];
      }
      if (mix) {
        keep_h.row(t, b, kbuf);
        T* dn = dhn + b * P;
#pragma omp simd
        for (int64_t u = 0; u < P; ++u) {
          dht_row[u] = (T(1) - kbuf[u]) * d[u];
          dn[u] = kbuf[u] * d[u];
        }
      } else if (dht_row != d) {
        std::memcpy(dht_row, d, P * sizeof(T));
      }
    };
    T* dR = s.proj ? dR_t.data_ptr<T>() : nullptr;  // dr (B, H) with a projection
    for_step_rows(B, flops_per_row, Wp.bytes(), [&](int64_t r0, int64_t r1, int thread) {
      const int64_t n = r1 - r0;
      T* kbuf = tb.rows<T>(thread);  // keep factors (M,)
      T* dr_row = kbuf + M;          // dr when h is mixed (M,)
      T* dct = dr_row + M;           // dc~ (H,)
      T* sink = dct + H;             // gradients of absent gates (H,)
      double* acc = tb.accumulators(thread);
      if (s.proj) {  // dr (n, H) = dh~ (n, P) W_hr (P, H)
        T* DHt = DHt_t.data_ptr<T>() + t * B * P;
        for (int64_t b = r0; b < r1; ++b) split_h(b, kbuf, DHt + b * P);
        Whr->multiply(n, DHt + r0 * P, P, dR + r0 * H, H, false, nullptr, false);
      }
      if (d_cseq) {
        const T* dcs = d_cseq + t * B * H;
        for (int64_t j = r0 * H; j < r1 * H; ++j) dc[j] += dcs[j];
      }
      for (int64_t b = r0; b < r1; ++b) {
        const T* dr;
        if (s.proj) {
          dr = dR + b * H;
        } else {
          split_h(b, kbuf, mix ? dr_row : dh + b * P);
          dr = mix ? dr_row : dh + b * P;
        }
        const T* cp = cprev + b * H;
        const T* cn = ctil + b * H;
        T* dx = dxt + b * Dgx;
        if (mix) keep_c.row(t, b, kbuf);
        row(a, Gt + b * GW, cp, cn, dr, mix ? kbuf : a.zeros, dc + b * H, dx, dct, sink, acc + a_lnc);
        if (bias_o) {  // db = sum over rows of da (the gate columns of dgx): a = gx + LN(z) + b
          double* ab = acc + a_bias;
#pragma omp simd
          for (int64_t j = 0; j < GH; ++j) ab[j] += static_cast<double>(dx[j]);
        }
        if (s.depth) {
          const T* cl = Gt + b * GW + GH + H;
          double* a_cd = acc + a_dep;
          double* a_ld = acc + a_dep + H;
          for (int64_t u = 0; u < H; ++u) {
            a_cd[u] += static_cast<double>(dx[GH + u] * cp[u]);
            a_ld[u] += static_cast<double>(dx[GH + u] * cl[u]);
          }
        }
        if (s.peep) {
          double* ap = acc + a_peep;
          for (int64_t u = 0; u < H; ++u) {
            ap[u] += static_cast<double>(dx[s.oi + u] * cp[u]);
            ap[H + u] += static_cast<double>(dx[s.of + u] * cp[u]);
            ap[2 * H + u] += static_cast<double>(dx[s.oo + u] * cn[u]);
          }
        }
        if (s.ln) {  // dA = LN'(da) per gate block
          const T* z = Z + (t * B + b) * GH;
          T* dz = dA + (t * B + b) * GH;
          for (int64_t k = 0; k < GH; k += H) {
            T m, r;
            ln_stats(z + k, H, m, r);
            ln_backward(z + k, H, m, r, a.ln_hh + k, dx + k, dz + k, acc + a_lnhh + k);
          }
        }
      }
      // dh_{t-1} (n, P) (+)= dA_t (n, GH) W_hh (GH, P)
      Wp.multiply(n, dA + (t * B + r0) * ldA, ldA, dhn + r0 * P, P, mix, nullptr, false);
    });
    std::swap(dh_a, dh_b);
  }

  // weight gradients as GEMMs over all steps, the bias as a sum
  Tensor dW_t = at::empty_like(w_hh_t);
  gemm_prev<T>(T_, B, GH, P, dA, ldA, h0, hseq, dW_t.data_ptr<T>(), false);  // sum_t dA_t^T h_{t-1}
  Tensor dWhr_t = none_tensor(gx_t);
  if (s.proj) {
    dWhr_t = at::empty_like(*w_hr_o);  // sum_t dh~_t^T r_t
    gemm<T>(true, false, P, H, T_ * B, T(1), DHt_t.data_ptr<T>(), P, R, H, T(0), dWhr_t.data_ptr<T>(), H);
  }
  auto reduced = [&](const std::optional<Tensor>& like, int64_t offset) {
    if (!like) return none_tensor(gx_t);
    Tensor out = at::empty_like(*like);
    tb.reduce(offset, out.numel(), out.data_ptr<T>());
    return out;
  };
  return {dgx_t, dh_a, dc_t, dW_t, reduced(bias_o, a_bias), reduced(ln_hh_o, a_lnhh), reduced(peep_o, a_peep),
          dWhr_t, reduced(lnc_w_o, a_lnc), reduced(lnc_b_o, a_lnc + H), reduced(wdep_o, a_dep)};
}
Outputs lstm_forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t hidden, bool all_states,
                     double zoneout_rate, bool save) {
  const Tensor gx = get(in, GX) ? *get(in, GX) : *get(aux, X);  // gx, or x in inference
  if (gx.scalar_type() == at::kDouble) return forward<double>(in, aux, flags, hidden, all_states, zoneout_rate, save);
  TORCH_CHECK(gx.scalar_type() == at::kFloat, "rnnlab lstm: float32 or float64 expected, got ", gx.scalar_type());
  return forward<float>(in, aux, flags, hidden, all_states, zoneout_rate, save);
}

std::vector<Tensor> lstm_backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                                  const OptTensors& aux, int64_t flags, int64_t hidden, double zoneout_rate) {
  if (get(in, GX)->scalar_type() == at::kDouble)
    return backward<double>(grads, saved, in, aux, flags, hidden, zoneout_rate);
  return backward<float>(grads, saved, in, aux, flags, hidden, zoneout_rate);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("lstm_forward(Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, bool all_states, float zoneout_rate, "
        "bool save) -> (Tensor[], Tensor[])",
        &lstm_forward);
  m.def("lstm_backward(Tensor?[] grads, Tensor[] saved, Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, "
        "float zoneout_rate) -> Tensor[]",
        &lstm_backward);
}

}  // namespace rnnlab
