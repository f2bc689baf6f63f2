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

// Flags, set by rnnlab/engine/fused.py from the cell math.
enum : int64_t {
  kHasI = 1,        // the input gate has weights (not cifg / nig)
  kHasF = 2,        // the forget gate has weights (not nfg)
  kHasO = 4,        // the output gate has weights (not nog)
  kCifg = 8,        // i = 1 - f
  kNiaf = 16,       // no input activation
  kNoaf = 32,       // no output activation
  kPeephole = 64,   // p_i, p_f, p_o
  kDepth = 128,     // depth-gated LSTM: gx = [gates | d | c^L]
  kLayerNorm = 256  // LN of the recurrent product per gate block and of the cell
};

// inputs, in rnnlab/engine/fused.py's order
enum { GX, H0, C0, W_HH, B_HH, LN_HH, PEEPHOLE, W_HR, LN_CELL_W, LN_CELL_B, W_DEPTH };
// aux: packed lengths, zoneout masks of h and c, (clockwork entries unused here)
enum { LENGTHS, MASK_H, MASK_C };

struct Spec {
  int64_t T, B, H, P, GH, Dgx, GW;
  int64_t oi, of, og, oo;  // offset of each gate block in a row of gates; -1 if the gate is absent
  bool has_i, has_f, has_o, cifg, niaf, noaf, peep, depth, ln, proj;

  Spec(const Tensor& gx, const Tensor& w_hh, bool proj_, int64_t flags, int64_t H_)
      : T(gx.size(0)), B(gx.size(1)), H(H_), P(w_hh.size(1)), GH(w_hh.size(0)), Dgx(gx.size(2)) {
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
};

// Forward. Returns outputs [hseq (T,B,P), h_T (B,P), c_T (B,H), cseq (T,B,H) or empty] and, with save, the
// buffers the backward needs [cseq, G (T,B,GW) activated gates, C~ (T,B,H) pre-mixing cell (mixing only),
// R (T,B,H) pre-projection output (proj only), Z (T,B,GH) raw recurrent products (layer_norm only)].
template <typename T>
Outputs forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t H_, bool all_states,
                double zoneout_rate, bool save) {
  const Tensor gx_t = *get(in, GX), w_hh_t = *get(in, W_HH);
  const auto w_hr_o = get(in, W_HR);
  const Spec s(gx_t, w_hh_t, w_hr_o.has_value(), flags, H_);
  const int64_t T_ = s.T, B = s.B, H = s.H, P = s.P, GH = s.GH, GW = s.GW, Dgx = s.Dgx;

  const T* gx = gx_t.data_ptr<T>();
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* c0 = get(in, C0)->data_ptr<T>();
  const T* W = w_hh_t.data_ptr<T>();
  const int64_t M = std::max(P, GH);
  const ConstRows<T> consts(M);
  const T* ones = consts.ones.data();
  const T* zeros = consts.zeros.data();
  const T* bias = or_const(get(in, B_HH), zeros);
  const T* ln_hh = ptr_or_null<T>(get(in, LN_HH));
  const T* peep = ptr_or_null<T>(get(in, PEEPHOLE));
  const T* p_i = peep ? peep : zeros;
  const T* p_f = peep ? peep + H : zeros;
  const T* p_o = peep ? peep + 2 * H : zeros;
  const T* w_hr = ptr_or_null<T>(w_hr_o);
  const T* lnc_w = or_const(get(in, LN_CELL_W), ones);
  const T* lnc_b = or_const(get(in, LN_CELL_B), zeros);
  const T* wdep = ptr_or_null<T>(get(in, W_DEPTH));
  const T* w_cd = wdep ? wdep : zeros;
  const T* w_ld = wdep ? wdep + H : zeros;
  const Keep<T> keep_h = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, P);
  const Keep<T> keep_c = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_C), zoneout_rate, B, H);
  const bool mix = keep_h.any() || keep_c.any();

  // Buffers: with save, one slice per step (kept for the backward); without, one reused slice.
  const int64_t n_keep = save ? T_ : 1;
  Tensor hseq_t = at::empty({T_, B, P}, gx_t.options());
  Tensor cseq_t = at::empty({(save || all_states) ? T_ : 2, B, H}, gx_t.options());
  Tensor G_t = at::empty({n_keep, B, GW}, gx_t.options());
  Tensor Ct_t = mix ? at::empty({n_keep, B, H}, gx_t.options()) : none_tensor(gx_t);
  Tensor R_t = s.proj ? at::empty({n_keep, B, H}, gx_t.options()) : none_tensor(gx_t);
  Tensor Z_t = s.ln ? at::empty({n_keep, B, GH}, gx_t.options()) : none_tensor(gx_t);
  T* hseq = hseq_t.data_ptr<T>();
  T* cseq = cseq_t.data_ptr<T>();
  const int64_t c_slots = cseq_t.size(0);
  ThreadBuffers tb((M + 2 * H) * sizeof(T), 0);

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
    const T* gxt = gx + t * B * Dgx;

    // recurrent product (B, GH) = h_{t-1} (B, P) W_hh^T (P, GH): into the gates (or Z for layer norm)
    gemm<T>(false, true, B, GH, P, T(1), hprev, P, W, P, T(0), s.ln ? Zt : Gt, s.ln ? GH : GW);

    for_rows(B, 8 * GW, [&](int64_t b, int thread) {
      // variant switches as 0/1 numbers: blends like a * x + (1 - a) * y vectorise where selects do not
      const T has_o = s.has_o, cifg = s.cifg, noaf = s.noaf;
      T* g = Gt + b * GW;
      const T* x = gxt + b * Dgx;
      const T* cp = cprev + b * H;
      T* cn = ctil + b * H;
      T* kbuf = tb.rows<T>(thread);  // keep factors of one row (M,)
      T* rbuf = kbuf + M;            // r when it must still be mixed into h_t (H,)
      T* sink = rbuf + H;            // o of a variant without output gate (H,)
      // pre-activations a = x + LN(z) * gain + b_hh
      if (s.ln) {
        const T* z = Zt + b * GH;
        for (int64_t k = 0; k < GH; k += H) {
          T mean, rstd;
          ln_stats(z + k, H, mean, rstd);
#pragma omp simd
          for (int64_t u = k; u < k + H; ++u) g[u] = x[u] + (z[u] - mean) * rstd * ln_hh[u] + bias[u];
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < GH; ++j) g[j] += x[j] + bias[j];
      }
      if (s.peep) {
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) {
          g[s.oi + u] += p_i[u] * cp[u];
          g[s.of + u] += p_f[u] * cp[u];
        }
      }
      // gates i, f, g (o waits for c~ because of its peephole)
      if (s.has_f) {
#pragma omp simd
        for (int64_t u = s.of; u < s.of + H; ++u) g[u] = sigmoid(g[u]);
      }
      if (s.has_i) {
#pragma omp simd
        for (int64_t u = s.oi; u < s.oi + H; ++u) g[u] = sigmoid(g[u]);
      }
      if (!s.niaf) {
#pragma omp simd
        for (int64_t u = s.og; u < s.og + H; ++u) g[u] = fast_tanh(g[u]);
      }
      // c~ = i g + f c_{t-1}; an absent gate reads ones
      const T* gi = s.has_i ? g + s.oi : ones;
      const T* gf = s.has_f ? g + s.of : ones;
      const T* gg = g + s.og;
#pragma omp simd
      for (int64_t u = 0; u < H; ++u) {
        const T f = gf[u];
        const T i = cifg * (T(1) - f) + (T(1) - cifg) * gi[u];
        cn[u] = i * gg[u] + f * cp[u];
      }
      if (s.depth) {  // + d c^L, d = sigma(gx_d + w_cd c_{t-1} + w_ld c^L)
        const T* xd = x + GH;
        const T* xl = x + GH + H;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) {
          const T d = sigmoid(xd[u] + w_cd[u] * cp[u] + w_ld[u] * xl[u]);
          g[GH + u] = d;
          g[GH + H + u] = xl[u];
          cn[u] += d * xl[u];
        }
      }
      // y = tanh(LN(c~)), o = sigma(a_o + p_o c~), r = o y (LN is the identity without layer_norm)
      T mean_ = 0, rstd_ = 1;
      if (s.ln) ln_stats(cn, H, mean_, rstd_);
      const T mean = mean_, rstd = rstd_;
      T* out = s.proj ? Rt + b * H : (mix ? rbuf : ht + b * P);
      const T* go_in = s.has_o ? g + s.oo : zeros;
      T* go_out = s.has_o ? g + s.oo : sink;
#pragma omp simd
      for (int64_t u = 0; u < H; ++u) {
        const T ca = (cn[u] - mean) * rstd * lnc_w[u] + lnc_b[u];
        const T y = noaf * ca + (T(1) - noaf) * fast_tanh(ca);
        const T o = has_o * sigmoid(go_in[u] + p_o[u] * cn[u]) + (T(1) - has_o);
        go_out[u] = o;
        out[u] = o * y;
      }
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
    });

    if (s.proj) {  // h~ (B, P) = r (B, H) W_hr^T (H, P), then mixing
      gemm<T>(false, true, B, P, H, T(1), Rt, H, w_hr, H, T(0), ht, P);
      if (mix) {
        for_rows(B, P, [&](int64_t b, int thread) {
          T* kbuf = tb.rows<T>(thread);
          const T* hp = hprev + b * P;
          T* hn = ht + b * P;
          keep_h.row(t, b, kbuf);
#pragma omp simd
          for (int64_t u = 0; u < P; ++u) hn[u] = kbuf[u] * hp[u] + (T(1) - kbuf[u]) * hn[u];
        });
      }
    }
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
  const Spec s(gx_t, w_hh_t, w_hr_o.has_value(), flags, H_);
  const int64_t T_ = s.T, B = s.B, H = s.H, P = s.P, GH = s.GH, GW = s.GW, Dgx = s.Dgx;

  const Tensor h0_t = *get(in, H0), c0_t = *get(in, C0);
  const T* h0 = h0_t.data_ptr<T>();
  const T* c0 = c0_t.data_ptr<T>();
  const T* W = w_hh_t.data_ptr<T>();
  const auto bias_o = get(in, B_HH), ln_hh_o = get(in, LN_HH), peep_o = get(in, PEEPHOLE);
  const auto lnc_w_o = get(in, LN_CELL_W), lnc_b_o = get(in, LN_CELL_B), wdep_o = get(in, W_DEPTH);
  const int64_t M = std::max(P, GH);
  const ConstRows<T> consts(M);
  const T* ones = consts.ones.data();
  const T* zeros = consts.zeros.data();
  const bool has_bias = bias_o.has_value();
  const T* ln_hh = ptr_or_null<T>(ln_hh_o);
  const T* peep = ptr_or_null<T>(peep_o);
  const T* p_i = peep ? peep : zeros;
  const T* p_f = peep ? peep + H : zeros;
  const T* p_o = peep ? peep + 2 * H : zeros;
  const T* w_hr = ptr_or_null<T>(w_hr_o);
  const T* lnc_w = or_const(lnc_w_o, ones);
  const T* lnc_b = or_const(lnc_b_o, zeros);
  const T* wdep = ptr_or_null<T>(wdep_o);
  const T* w_cd = wdep ? wdep : zeros;
  const T* w_ld = wdep ? wdep + H : zeros;
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

  Tensor dgx_t = at::empty({T_, B, Dgx}, gx_t.options());
  Tensor dh_a = d_hT_o ? d_hT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, P}, gx_t.options());  // dh_t carried
  Tensor dh_b = at::empty({B, P}, gx_t.options());
  Tensor dc_t = d_cT_o ? d_cT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, H}, gx_t.options());  // dc_t carried, in place
  Tensor DHt_t = s.proj ? at::empty({T_, B, P}, gx_t.options()) : none_tensor(gx_t);  // dh~ per step
  Tensor dR_t = s.proj ? at::empty({B, H}, gx_t.options()) : none_tensor(gx_t);
  T* dgx = dgx_t.data_ptr<T>();
  T* dc = dc_t.data_ptr<T>();
  // gradient of the recurrent product: its own buffer with layer norm, else the gate columns of dgx
  Tensor dZ_t = s.ln ? at::empty({T_, B, GH}, gx_t.options()) : none_tensor(gx_t);
  T* dA = s.ln ? dZ_t.data_ptr<T>() : dgx;
  const int64_t ldA = s.ln ? GH : Dgx;

  // per-thread accumulators of the vector parameters
  const int64_t a_bias = 0, a_lnhh = GH, a_peep = 2 * GH, a_lnc = 2 * GH + 3 * H, a_dep = 2 * GH + 5 * H;
  ThreadBuffers tb((2 * M + 2 * H) * sizeof(T), 2 * GH + 7 * H);

  for (int64_t t = T_ - 1; t >= 0; --t) {
    T* dh = dh_a.data_ptr<T>();      // dh_t (B, P)
    T* dhn = dh_b.data_ptr<T>();     // dh_{t-1} being built
    const T* hprev = t ? hseq + (t - 1) * B * P : h0;
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
    const T* dr_all = nullptr;  // dr (B, H)
    if (s.proj) {
      T* DHt = DHt_t.data_ptr<T>() + t * B * P;
      for_rows(B, P, [&](int64_t b, int thread) { split_h(b, tb.rows<T>(thread), DHt + b * P); });
      gemm<T>(false, false, B, H, P, T(1), DHt, P, w_hr, H, T(0), dR_t.data_ptr<T>(), H);  // dr = dh~ W_hr
      dr_all = dR_t.data_ptr<T>();
    }

    if (d_cseq) {
      const T* dcs = d_cseq + t * B * H;
      for (int64_t j = 0; j < B * H; ++j) dc[j] += dcs[j];
    }

    for_rows(B, 10 * GW, [&](int64_t b, int thread) {
      // variant switches as 0/1 numbers: blends like a * x + (1 - a) * y vectorise where selects do not
      const T cifg = s.cifg, niaf = s.niaf, noaf = s.noaf;
      T* kbuf = tb.rows<T>(thread);  // keep factors (M,)
      T* dr_row = kbuf + M;          // dr when h is mixed (M,)
      T* dca = dr_row + M;           // d LN(c~), then dc~ (H,)
      T* sink = dca + H;             // gradients of absent gates (H,)
      double* acc = tb.accumulators(thread);
      const T* dr;
      if (s.proj) {
        dr = dr_all + b * H;
      } else {
        split_h(b, kbuf, mix ? dr_row : dh + b * P);
        dr = mix ? dr_row : dh + b * P;
      }
      const T* g = Gt + b * GW;
      const T* cp = cprev + b * H;
      const T* cn = ctil + b * H;
      T* dcr = dc + b * H;
      T* dx = dxt + b * Dgx;
      const T* gi = s.has_i ? g + s.oi : ones;
      const T* gf = s.has_f ? g + s.of : ones;
      const T* gg = g + s.og;
      const T* go = s.has_o ? g + s.oo : ones;
      T* dxi = s.has_i ? dx + s.oi : sink;
      T* dxf = s.has_f ? dx + s.of : sink;
      T* dxo = s.has_o ? dx + s.oo : sink;
      T* dxg = dx + s.og;
      // output: da_o = dr y o (1 - o), d LN(c~) = dr o (1 - y^2)
      T mean_ = 0, rstd_ = 1;
      if (s.ln) ln_stats(cn, H, mean_, rstd_);
      const T mean = mean_, rstd = rstd_;
#pragma omp simd
      for (int64_t u = 0; u < H; ++u) {
        const T ca = (cn[u] - mean) * rstd * lnc_w[u] + lnc_b[u];
        const T y = noaf * ca + (T(1) - noaf) * fast_tanh(ca);
        const T o = go[u];
        const T dy = dr[u] * o;
        dca[u] = dy * (T(1) - (T(1) - noaf) * y * y);
        dxo[u] = dr[u] * y * o * (T(1) - o);
      }
      if (s.ln) {  // through the cell's layer norm: d ln_bias_cell = dLN, d ln_weight_cell = dLN * xhat
        double* ab = acc + a_lnc + H;
        for (int64_t u = 0; u < H; ++u) ab[u] += static_cast<double>(dca[u]);
        ln_backward(cn, H, mean, rstd, lnc_w, dca, dca, acc + a_lnc);
      }
      // the cell: dc~ (kept in dca), the gates, dc_{t-1}
      if (mix) keep_c.row(t, b, kbuf);
      const T* kk = mix ? kbuf : zeros;
#pragma omp simd
      for (int64_t u = 0; u < H; ++u) {
        const T k = kk[u];
        const T dct = (T(1) - k) * dcr[u] + dca[u] + dxo[u] * p_o[u];
        const T f = gf[u];
        const T i = cifg * (T(1) - f) + (T(1) - cifg) * gi[u];
        const T gv = gg[u];
        const T dg = dct * i;
        dxg[u] = dg * (T(1) - (T(1) - niaf) * gv * gv);
        const T di = dct * gv;
        const T df = dct * cp[u] - cifg * di;
        const T dai = di * i * (T(1) - i);
        const T daf = df * f * (T(1) - f);
        dxi[u] = dai;
        dxf[u] = daf;
        dcr[u] = k * dcr[u] + dct * f + dai * p_i[u] + daf * p_f[u];
        dca[u] = dct;
      }
      if (s.depth) {  // da_d = dc~ c^L d (1 - d);  dc^L = dc~ d + da_d w_ld;  dc_{t-1} += da_d w_cd
        const T* d = g + GH;
        const T* cl = g + GH + H;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) {
          const T dad = dca[u] * cl[u] * d[u] * (T(1) - d[u]);
          dx[GH + u] = dad;
          dx[GH + H + u] = dca[u] * d[u] + dad * w_ld[u];
          dcr[u] += dad * w_cd[u];
        }
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
          ap[u] += static_cast<double>(dxi[u] * cp[u]);
          ap[H + u] += static_cast<double>(dxf[u] * cp[u]);
          ap[2 * H + u] += static_cast<double>(dxo[u] * cn[u]);
        }
      }
      if (has_bias) {
        double* ab = acc + a_bias;
        for (int64_t j = 0; j < GH; ++j) ab[j] += static_cast<double>(dx[j]);
      }
      if (s.ln) {  // dA = LN'(da) per gate block
        const T* z = Z + (t * B + b) * GH;
        T* dz = dA + (t * B + b) * GH;
        for (int64_t k = 0; k < GH; k += H) {
          T m, r;
          ln_stats(z + k, H, m, r);
          ln_backward(z + k, H, m, r, ln_hh + k, dx + k, dz + k, acc + a_lnhh + k);
        }
      }
    });

    // dh_{t-1} (B, P) (+)= dA_t (B, GH) W_hh (GH, P)
    gemm<T>(false, false, B, P, GH, T(1), dA + t * B * ldA, ldA, W, P, mix ? T(1) : T(0), dhn, P);
    std::swap(dh_a, dh_b);
  }

  // weight gradients as GEMMs over all steps
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
  const Tensor gx = *get(in, GX);
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
