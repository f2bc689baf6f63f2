// Fused GRU over a whole sequence, forward and hand-written backward (BPTT), for every variant of
// rnnlab.cells.gru: vanilla (torch's), reset_before (Cho et al. 2014), mut1, mut2, mut3 (Jozefowicz et al.
// 2015) and mgu (Zhou et al. 2016), each with or without layer_norm. One implementation: a variant is a
// choice among a few switches (Spec below).
//
// Notation of one step (B rows): gx = [x_r | x_z | x_n] from project_input (mgu: [x_f | x_n]); the recurrent
// products are blocks of A = LN(P W^T) * ln_hh + b_hh, each block normalised on its own, where P is h_{t-1},
// tanh(h_{t-1}) (mut3's z) or q = r * h_{t-1} (the candidate of every variant but vanilla).
//
// Forward:
//   r = sigma(x_r + A_r(h))
//   z = sigma(x_z + A_z(h))   [vanilla, reset_before, mut2];  sigma(x_z + A_z(tanh h)) [mut3];
//       sigma(x_z) [mut1];  z = r = f [mgu]
//   vanilla:  n = tanh(x_n + r * A_n(h))                       (reset after the product: one GEMM per step)
//   others:   n = tanh(x_n + A_n(r * h))                       (a second GEMM per step, after r)
//   h~ = (1 - z) n + z h_{t-1}   [vanilla, reset_before]   or   z n + (1 - z) h_{t-1}   [mut1-3, mgu]
//   h_t = k h_{t-1} + (1 - k) h~                               (state mixing, common.h: Keep)
//
// Backward, step t, from dh_t:
//   dh~ = (1 - k) dh_t;  dh_{t-1} = k dh_t + dh~ z  (or dh~ (1 - z))
//   dn = dh~ (1 - z) (or dh~ z);  dz = dh~ (h_{t-1} - n) (or dh~ (n - h_{t-1}))
//   da_n = dn (1 - n^2) = dx_n
//   vanilla:  dA_n = da_n r,  dr = da_n A_n
//   others:   dq = LN'(da_n) W_n (one GEMM per step),  dr = dq h_{t-1},  dh_{t-1} += dq r
//   da_r = dr r (1 - r) = dx_r;  da_z = dz z (1 - z) = dx_z   (mgu: da_f = (dr + dz) f (1 - f))
//   dh_{t-1} += LN'(dA_h) W_h    (the blocks computed from h; one GEMM per step)
//   mut3: dh_{t-1} += (LN'(dA_z) W_z) (1 - tanh^2 h_{t-1})
//   after the loop, one GEMM over (T*B) per product input: dW_h = sum_t dA_h^T h_{t-1}, dW_z = sum_t dA_z^T
//   tanh(h_{t-1}) (mut3), dW_n = sum_t dA_n^T q_t (all but vanilla).
#include "common.h"

namespace rnnlab {
namespace {

// The variant numbers (kVanilla, ..., kMgu), kLayerNorm, the order of the inputs (GX, H0, W_HH, B_HH, LN_HH)
// and of the aux slots (LENGTHS, MASK_H, ..., X): generated from rnnlab/engine/ops.py (rnnlab_layout.h).
using namespace layout;
using namespace layout::gru;

enum ZSource { kZFromH, kZFromTanhH, kZFromInput, kZIsR };

struct Spec {
  int64_t T, B, H, Dgx, GHh;
  int64_t variant;
  bool ln, reset_after, mut_output;
  ZSource z_source;
  int64_t n1;      // columns of the product of h_{t-1} (r, then z if it comes from h; vanilla: r, z, n)
  int64_t an;      // column of the candidate's block in the recurrent product
  int64_t xz, xn;  // columns of x_z, x_n in gx (mgu: x_z = x_f)

  Spec(int64_t T_, int64_t B_, int64_t Dgx_, const Tensor& w_hh, int64_t flags, int64_t H_)
      : T(T_), B(B_), H(H_), Dgx(Dgx_), GHh(w_hh.size(0)) {
    variant = flags & kVariantMask;
    ln = flags & kLayerNorm;
    TORCH_CHECK(variant >= kVanilla && variant <= kMgu, "rnnlab gru: unknown variant ", variant);
    reset_after = variant == kVanilla;
    mut_output = variant == kMut1 || variant == kMut2 || variant == kMut3 || variant == kMgu;
    z_source = variant == kMut3 ? kZFromTanhH : variant == kMut1 ? kZFromInput : variant == kMgu ? kZIsR : kZFromH;
    n1 = variant == kVanilla ? 3 * H : (variant == kResetBefore || variant == kMut2) ? 2 * H : H;
    an = (variant == kMut1 || variant == kMgu) ? H : 2 * H;
    xz = variant == kMgu ? 0 : H;
    xn = variant == kMgu ? H : 2 * H;
    const int64_t rows = (variant == kMut1 || variant == kMgu) ? 2 * H : 3 * H;
    TORCH_CHECK(GHh == rows && w_hh.size(1) == H, "rnnlab gru: weight_hh of shape ", w_hh.sizes(), " does not match");
    TORCH_CHECK(Dgx == (variant == kMgu ? 2 * H : 3 * H), "rnnlab gru: gx width ", Dgx, " does not match");
  }
};

// Gates kept per step (GW columns): [r | z | n | A_n (vanilla only)]; mgu keeps f in both r and z.
inline int64_t gates_width(const Spec& s) { return s.reset_after ? 4 * s.H : 3 * s.H; }

// a (n,) = LN(z) * gain + bias (bias may be a row of zeros; no LN when gain is null); a may alias z.
template <typename T> inline void product_block(const T* z, int64_t n, const T* gain, const T* bias, T* a) {
  if (gain) {
    T mean_, rstd_;
    ln_stats(z, n, mean_, rstd_);
    const T mean = mean_, rstd = rstd_;
#pragma omp simd
    for (int64_t u = 0; u < n; ++u) a[u] = (z[u] - mean) * rstd * gain[u] + bias[u];
  } else {
#pragma omp simd
    for (int64_t u = 0; u < n; ++u) a[u] = z[u] + bias[u];
  }
}

// Backward of product_block for each H-block of [0, n): da -> dz (may alias da when there is no LN); with
// LN, the bias and gain gradients into the accumulators (without, the bias is summed over dz = da at the end).
template <typename T>
inline void product_block_backward(const T* z, int64_t n, int64_t H, const T* gain, const T* da, T* dz,
                                   double* acc_bias, double* acc_gain) {
  if (!gain) {  // dA = da; the bias gradient is summed over dA after the loop
    if (dz != da) std::memcpy(dz, da, n * sizeof(T));
    return;
  }
  for (int64_t u = 0; u < n; ++u) acc_bias[u] += static_cast<double>(da[u]);
  for (int64_t k = 0; k < n; k += H) {
    T mean, rstd;
    ln_stats(z + k, H, mean, rstd);
    ln_backward(z + k, H, mean, rstd, gain + k, da + k, dz + k, acc_gain + k);
  }
}

// Forward. outputs [hseq (T,B,H), h_T, empty, empty]; saved (with save) [G (T,B,GW), Z (T,B,GHh) raw products
// (layer_norm only), Q (T,B,H) r*h (not vanilla), TH (T,B,H) tanh(h_{t-1}) (mut3)].
template <typename T>
Outputs forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t H_, double zoneout_rate,
                bool save) {
  const Tensor w_hh_t = *get(in, W_HH);
  const auto [steps, batch, width, gx_t] = input_dims(get(in, GX), aux, X);
  const Spec s(steps, batch, width, w_hh_t, flags, H_);
  const int64_t T_ = s.T, B = s.B, H = s.H, Dgx = s.Dgx, GHh = s.GHh, GW = gates_width(s);
  const ConstRows<T> consts(GHh);
  StepInput<T> input = step_input<T>(get(in, GX), aux, X);
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* W = w_hh_t.data_ptr<T>();
  const T* bias = or_const(get(in, B_HH), consts.zeros.data());
  const T* gain = ptr_or_null<T>(get(in, LN_HH));
  const Keep<T> keep = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, H);
  const bool mix = keep.any();
  const T mut = s.mut_output;  // 0/1: which of z, 1 - z weighs the candidate

  const int64_t n_keep = save ? T_ : 1;
  const auto opts = gx_t.options();
  Tensor hseq_t = at::empty({T_, B, H}, opts);
  Tensor G_t = at::empty({n_keep, B, GW}, opts);
  Tensor Z_t = at::empty({s.ln ? n_keep : 1, B, GHh}, opts);
  Tensor Q_t = s.reset_after ? none_tensor(gx_t) : at::empty({n_keep, B, H}, opts);
  Tensor TH_t = s.z_source == kZFromTanhH ? at::empty({n_keep, B, H}, opts) : none_tensor(gx_t);
  T* hseq = hseq_t.data_ptr<T>();
  ThreadBuffers tb(H * sizeof(T), 0);

  const PackedB<T> Wh_T(W, H, H, s.n1, true, T_ * B);  // W_h^T (H, n1): the rows fed h_{t-1}
  std::optional<PackedB<T>> Wz_T, Wn_T;
  if (s.z_source == kZFromTanhH) Wz_T.emplace(W + H * H, H, H, H, true, T_ * B);
  if (!s.reset_after) Wn_T.emplace(W + s.an * H, H, H, H, true, T_ * B);
  const double flops_per_row = 2.0 * H * GHh + 30.0 * GW;

  for (int64_t t = 0; t < T_; ++t) {
    const int64_t slot = save ? t : 0;
    T* Gt = G_t.data_ptr<T>() + slot * B * GW;
    T* Zt = Z_t.data_ptr<T>() + (s.ln ? slot : 0) * B * GHh;
    T* Qt = s.reset_after ? nullptr : Q_t.data_ptr<T>() + slot * B * H;
    T* THt = s.z_source == kZFromTanhH ? TH_t.data_ptr<T>() + slot * B * H : nullptr;
    const T* hprev = t ? hseq + (t - 1) * B * H : h0;
    T* ht = hseq + t * B * H;
    const T* gxt = input.at(t);


    // h~ from the gates and the candidate's pre-activation, then mixing into h_t
    auto finish = [&](int64_t b, int thread, const T* an_row, T* g) {
      const T* x = gxt + b * Dgx;
      const T* hp = hprev + b * H;
      const T* r = g;
      const T* z = g + H;
      T* n = g + 2 * H;
      T* hn = ht + b * H;
      const T* xn = x + s.xn;
      const T reset_after = s.reset_after, mut_ = mut;
#pragma omp simd
      for (int64_t u = 0; u < H; ++u) {
        // vanilla: x_n + r * A_n;  others: x_n + A_n (A_n already saw r through q = r h)
        const T pre = xn[u] + (reset_after * r[u] + (T(1) - reset_after)) * an_row[u];
        const T nv = fast_tanh(pre);
        n[u] = nv;
        const T wz = mut_ * z[u] + (T(1) - mut_) * (T(1) - z[u]);  // weight of the candidate
        hn[u] = wz * nv + (T(1) - wz) * hp[u];
      }
      if (mix) {
        T* kbuf = tb.rows<T>(thread);
        keep.row(t, b, kbuf);
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) hn[u] = kbuf[u] * hp[u] + (T(1) - kbuf[u]) * hn[u];
      }
    };

    auto gates = [&](int64_t b, int thread) {
      const T* x = gxt + b * Dgx;
      T* za = Zt + b * GHh;  // raw products; with layer norm kept raw, the activations go to g
      T* g = Gt + b * GW;
      if (s.reset_after && !s.ln) {  // vanilla without layer norm: the whole row in one pass
        const T* hp = hprev + b * H;
        T* hn = ht + b * H;
        const T *xr = x, *xz = x + H, *xn = x + 2 * H, *zr = za, *zz = za + H, *zn = za + 2 * H;
        const T *br = bias, *bz = bias + H, *bn = bias + 2 * H;
        T *gr = g, *gz = g + H, *gn = g + 2 * H, *gan = g + 3 * H;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) {
          const T r = sigmoid(xr[u] + zr[u] + br[u]);
          const T z = sigmoid(xz[u] + zz[u] + bz[u]);
          const T an = zn[u] + bn[u];
          const T nv = fast_tanh(xn[u] + r * an);
          gr[u] = r;
          gz[u] = z;
          gn[u] = nv;
          gan[u] = an;
          hn[u] = (T(1) - z) * nv + z * hp[u];
        }
        if (mix) {
          T* kbuf = tb.rows<T>(thread);
          keep.row(t, b, kbuf);
#pragma omp simd
          for (int64_t u = 0; u < H; ++u) hn[u] = kbuf[u] * hp[u] + (T(1) - kbuf[u]) * hn[u];
        }
        return;
      }
      // r and z
      T* ar = g;  // A_r, then r
      T* az = g + H;
      product_block(za, H, gain, bias, ar);
      if (s.z_source == kZFromH || s.z_source == kZFromTanhH) {
        product_block(za + H, H, gain ? gain + H : nullptr, bias + H, az);
      } else {
        std::fill(az, az + H, T(0));  // z from x_z alone (mut1), or a copy of r (mgu)
      }
#pragma omp simd
      for (int64_t u = 0; u < H; ++u) {
        g[u] = sigmoid(x[u] + ar[u]);
        az[u] = sigmoid(x[s.xz + u] + az[u]);
      }
      if (s.z_source == kZIsR) std::memcpy(az, g, H * sizeof(T));
      if (s.reset_after) {  // A_n of h_{t-1} kept in the 4th block
        T* an = g + 3 * H;
        product_block(za + 2 * H, H, gain ? gain + 2 * H : nullptr, bias + 2 * H, an);
        finish(b, thread, an, g);
      } else {  // q = r h_{t-1}, input of the candidate's product
        const T* hp = hprev + b * H;
        T* q = Qt + b * H;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) q[u] = g[u] * hp[u];
      }
    };

    for_step_rows(B, flops_per_row, Wh_T.bytes(), [&](int64_t r0, int64_t r1, int thread) {
      const int64_t n = r1 - r0;
      // products of h_{t-1} (and of tanh h_{t-1} for mut3's z)
      Wh_T.multiply(n, hprev + r0 * H, H, Zt + r0 * GHh, GHh, false, nullptr, false);
      if (THt) {
        for (int64_t b = r0; b < r1; ++b) {
          const T* hp = hprev + b * H;
          T* th = THt + b * H;
#pragma omp simd
          for (int64_t u = 0; u < H; ++u) th[u] = fast_tanh(hp[u]);
        }
        Wz_T->multiply(n, THt + r0 * H, H, Zt + r0 * GHh + H, GHh, false, nullptr, false);
      }
      for (int64_t b = r0; b < r1; ++b) gates(b, thread);
      if (!s.reset_after) {  // A_n = LN(q W_n^T) + b_n, then the candidate and h_t
        Wn_T->multiply(n, Qt + r0 * H, H, Zt + r0 * GHh + s.an, GHh, false, nullptr, false);
        for (int64_t b = r0; b < r1; ++b) {
          T* g = Gt + b * GW;
          T* an = g + 2 * H;  // A_n, replaced by n in `finish`
          product_block(Zt + b * GHh + s.an, H, gain ? gain + s.an : nullptr, bias + s.an, an);
          finish(b, thread, an, g);
        }
      }
    });
  }
  Tensor hT = hseq_t[T_ - 1].clone();
  std::vector<Tensor> outputs{hseq_t, hT, none_tensor(gx_t), none_tensor(gx_t)};
  std::vector<Tensor> saved;
  if (save) saved = {G_t, s.ln ? Z_t : none_tensor(gx_t), Q_t, TH_t};
  return {outputs, saved};
}

// Backward. grads [d hseq, d h_T, -, -]; saved [hseq] + the forward's saved list.
template <typename T>
std::vector<Tensor> backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                             const OptTensors& aux, int64_t flags, int64_t H_, double zoneout_rate) {
  const Tensor gx_t = *get(in, GX), w_hh_t = *get(in, W_HH);
  const Spec s(gx_t.size(0), gx_t.size(1), gx_t.size(2), w_hh_t, flags, H_);
  const int64_t T_ = s.T, B = s.B, H = s.H, Dgx = s.Dgx, GHh = s.GHh, GW = gates_width(s);
  const ConstRows<T> consts(GHh);
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* W = w_hh_t.data_ptr<T>();
  const auto bias_o = get(in, B_HH), gain_o = get(in, LN_HH);
  const T* bias = or_const(bias_o, consts.zeros.data());
  const T* gain = ptr_or_null<T>(gain_o);
  const Keep<T> keep = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, H);
  const bool mix = keep.any();
  const T mut = s.mut_output;

  const T* hseq = saved[0].data_ptr<T>();
  const T* G = saved[1].data_ptr<T>();
  const T* Z = s.ln ? saved[2].data_ptr<T>() : nullptr;
  const T* Q = s.reset_after ? nullptr : saved[3].data_ptr<T>();
  const T* TH = s.z_source == kZFromTanhH ? saved[4].data_ptr<T>() : nullptr;
  const auto d_hseq_o = get(grads, 0), d_hT_o = get(grads, 1);
  const T* d_hseq = ptr_or_null<T>(d_hseq_o);

  const auto opts = gx_t.options();
  Tensor dgx_t = at::empty({T_, B, Dgx}, opts);
  // Gradients of the recurrent products (one H-block per gate row block of W_hh), all steps. With layer norm
  // they are LN'(dA) and get their own buffer dZ; without, dA of r, z and of the candidate are the gx
  // gradients of those gates, except vanilla's candidate (dA_n = da_n r): that one lives in DN, a buffer of
  // a chunk of steps (C, B, H) whose weight gradient (and bias sum) is taken each time the chunk is full.
  const bool chunked_dn = !s.ln && s.reset_after;
  const int64_t C = chunked_dn ? chunk_steps(T_, B, H * sizeof(T)) : 0;
  Tensor dZ_t = s.ln ? at::empty({T_, B, GHh}, opts) : none_tensor(gx_t);
  Tensor DN_t = chunked_dn ? at::empty({C, B, H}, opts) : none_tensor(gx_t);
  std::vector<double> dbias_n(chunked_dn ? H : 0, 0.0);  // sum of dA_n over all rows
  Tensor dh_a = d_hT_o ? d_hT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, H}, opts);
  Tensor dh_b = at::empty({B, H}, opts);
  Tensor dz_t = at::empty({B, H}, opts);  // dz between the two row passes
  Tensor dq_t = at::empty({B, H}, opts);  // dq (B, H), or d tanh(h) for mut3
  T* dgx = dgx_t.data_ptr<T>();
  T* dZ = s.ln ? dZ_t.data_ptr<T>() : nullptr;
  T* DN = DN_t.numel() ? DN_t.data_ptr<T>() : nullptr;
  // (base, row stride) of the gradient of the product block at W_hh row offset `col`, over all T*B rows
  // (vanilla's candidate without layer norm: DN, whose rows are those of the current chunk only)
  auto dA = [&](int64_t col) -> std::pair<T*, int64_t> {
    if (s.ln) return {dZ + col, GHh};
    if (col == s.an) return s.reset_after ? std::pair<T*, int64_t>{DN, H} : std::pair<T*, int64_t>{dgx + s.xn, Dgx};
    return {dgx + col, Dgx};  // r at 0, z at H: the same columns in gx and W_hh
  };
  // the first row of step t in DN
  auto dn_row = [&](int64_t t) { return DN + (t % C) * B * H; };
  T* dzb = dz_t.data_ptr<T>();
  T* dq = dq_t.data_ptr<T>();
  const int64_t a_bias = 0, a_gain = GHh;
  ThreadBuffers tb(2 * GHh * sizeof(T), 2 * GHh);

  // W_h (n1, H): the rows fed h_{t-1}; vanilla without layer norm splits off the candidate's rows, whose
  // gradient lives apart (DN)
  const int64_t nh1 = !s.ln && s.reset_after ? 2 * H : s.n1;
  const PackedB<T> Wh(W, H, nh1, H, false, T_ * B);
  std::optional<PackedB<T>> Wz, Wn;
  if (s.z_source == kZFromTanhH) Wz.emplace(W + H * H, H, H, H, false, T_ * B);
  if (!s.reset_after || !s.ln) Wn.emplace(W + s.an * H, H, H, H, false, T_ * B);
  const double flops_per_row = 2.0 * H * GHh + 40.0 * GW;
  Tensor dW_t = at::empty_like(w_hh_t);
  T* dW = dW_t.data_ptr<T>();

  for (int64_t t = T_ - 1; t >= 0; --t) {
    T* dh = dh_a.data_ptr<T>();
    T* dhn = dh_b.data_ptr<T>();
    const T* hprev = t ? hseq + (t - 1) * B * H : h0;
    const T* Gt = G + t * B * GW;
    T* dxt = dgx + t * B * Dgx;
    T* dZt = s.ln ? dZ + t * B * GHh : nullptr;
    const T* Zt = Z ? Z + t * B * GHh : nullptr;
    const T* dhs = d_hseq ? d_hseq + t * B * H : nullptr;

    // the candidate, z, and (vanilla) r
    auto candidate = [&](int64_t b, int thread) {
      T* scratch = tb.rows<T>(thread);
      T* da = scratch;  // dA of this row (GHh,), before the layer norms
      double* acc = tb.accumulators(thread);
      const T* g = Gt + b * GW;
      const T* r = g;
      const T* z = g + H;
      const T* n = g + 2 * H;
      const T* hp = hprev + b * H;
      T* d = dh + b * H;
      T* dn_ = dhn + b * H;
      T* dx = dxt + b * Dgx;
      T* dzr = dzb + b * H;
      if (dhs) {
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) d[u] += dhs[b * H + u];
      }
      const T* kk = consts.zeros.data();
      if (mix) {
        T* kbuf = scratch + GHh;
        keep.row(t, b, kbuf);
        kk = kbuf;
      }
      T* dan = chunked_dn ? dn_row(t) + b * H : da + s.an;
#pragma omp simd
      for (int64_t u = 0; u < H; ++u) {
        const T dht = (T(1) - kk[u]) * d[u];
        const T wz = mut * z[u] + (T(1) - mut) * (T(1) - z[u]);  // weight of the candidate
        dn_[u] = kk[u] * d[u] + dht * (T(1) - wz);
        const T dn = dht * wz;
        // d wz / dz = 2 mut - 1;  h~ = wz n + (1 - wz) h
        dzr[u] = (T(2) * mut - T(1)) * dht * (n[u] - hp[u]);
        const T dpn = dn * (T(1) - n[u] * n[u]);
        dx[s.xn + u] = dpn;
        dan[u] = dpn;
      }
      if (s.reset_after) {  // n = tanh(x_n + r A_n): dA_n = da_n r, dr = da_n A_n
        const T* an = g + 3 * H;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) {
          const T dpn = dan[u];
          const T dar = dpn * an[u] * r[u] * (T(1) - r[u]);
          const T daz = dzr[u] * z[u] * (T(1) - z[u]);
          dan[u] = dpn * r[u];
          da[u] = dar;
          da[H + u] = daz;
          dx[u] = dar;
          dx[H + u] = daz;
        }
        if (s.ln)
          product_block_backward(Zt + b * GHh, GHh, H, gain, da, dZt + b * GHh, acc + a_bias, acc + a_gain);
      } else if (s.ln) {
        product_block_backward(Zt + b * GHh + s.an, H, H, gain + s.an, dan, dZt + b * GHh + s.an,
                               acc + a_bias + s.an, acc + a_gain + s.an);
      }
    };
    // r and z of the variants that reset before the candidate's product (q = r h_{t-1})
    auto reset = [&](int64_t b, int thread) {
        T* da = tb.rows<T>(thread);
        double* acc = tb.accumulators(thread);
        const T* g = Gt + b * GW;
        const T* r = g;
        const T* z = g + H;
        const T* hp = hprev + b * H;
        const T* dqr = dq + b * H;
        const T* dzr = dzb + b * H;
        T* dn_ = dhn + b * H;
        T* dx = dxt + b * Dgx;
        const T is_mgu = s.z_source == kZIsR;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) {
          dn_[u] += dqr[u] * r[u];
          const T dr = dqr[u] * hp[u] + is_mgu * dzr[u];  // mgu: f plays r and z
          da[u] = dr * r[u] * (T(1) - r[u]);
          da[H + u] = dzr[u] * z[u] * (T(1) - z[u]);
        }
        std::memcpy(dx, da, H * sizeof(T));  // dx_r (mgu: dx_f)
        if (s.z_source != kZIsR) std::memcpy(dx + s.xz, da + H, H * sizeof(T));
        const int64_t nh = s.z_source == kZFromTanhH ? 2 * H : s.n1;  // blocks from h (and tanh h)
        if (s.ln) product_block_backward(Zt + b * GHh, nh, H, gain, da, dZt + b * GHh, acc + a_bias, acc + a_gain);
    };

    for_step_rows(B, flops_per_row, Wh.bytes(), [&](int64_t r0, int64_t r1, int thread) {
      const int64_t n = r1 - r0;
      for (int64_t b = r0; b < r1; ++b) candidate(b, thread);
      const int64_t row0 = t * B + r0;
      if (!s.reset_after) {  // dq (n, H) = dA_n (n, H) W_n (H, H);  q = r h_{t-1}
        const auto [an, ld] = dA(s.an);
        Wn->multiply(n, an + row0 * ld, ld, dq + r0 * H, H, false, nullptr, false);
        for (int64_t b = r0; b < r1; ++b) reset(b, thread);
      }
      // dh_{t-1} += dA_h (n, n1) W_h (n1, H)
      const auto [ah, ldh] = dA(0);
      Wh.multiply(n, ah + row0 * ldh, ldh, dhn + r0 * H, H, true, nullptr, false);
      if (chunked_dn) Wn->multiply(n, dn_row(t) + r0 * H, H, dhn + r0 * H, H, true, nullptr, false);
      if (s.z_source == kZFromTanhH) {  // mut3: dh_{t-1} += (dA_z W_z) (1 - tanh^2 h_{t-1})
        const auto [az, ldz] = dA(H);
        Wz->multiply(n, az + row0 * ldz, ldz, dq + r0 * H, H, false, nullptr, false);
        const T* THt = TH + t * B * H;
        for (int64_t j = r0 * H; j < r1 * H; ++j) dhn[j] += dq[j] * (T(1) - THt[j] * THt[j]);
      }
    });
    std::swap(dh_a, dh_b);
    if (chunked_dn && t % C == 0) {  // DN holds steps [t, t1): dW_n (+)= sum dA_n^T h_{t-1}, and the bias sum
      const int64_t t1 = std::min(T_, t + C);
      gemm_prev_steps<T>(t, t1, B, H, H, DN, H, h0, hseq, dW + 2 * H * H, t1 < T_);
      for (int64_t j = 0; j < (t1 - t) * B; ++j)
        for (int64_t u = 0; u < H; ++u) dbias_n[u] += static_cast<double>(DN[j * H + u]);
    }
  }

  // weight gradients: one GEMM over all steps per product input
  const auto [ah, ldh] = dA(0);
  gemm_prev<T>(T_, B, nh1, H, ah, ldh, h0, hseq, dW, false);  // rows [0, nh1): sum_t dA_h^T h_{t-1}
  if (s.z_source == kZFromTanhH) {
    const auto [az, ldz] = dA(H);
    gemm<T>(true, false, H, H, T_ * B, T(1), az, ldz, TH, H, T(0), dW + H * H, H);
  }
  if (!s.reset_after) {
    const auto [an, ld] = dA(s.an);
    gemm<T>(true, false, H, H, T_ * B, T(1), an, ld, Q, H, T(0), dW + s.an * H, H);
  }
  auto reduced = [&](const std::optional<Tensor>& like, int64_t offset) {
    if (!like) return none_tensor(gx_t);
    Tensor out = at::empty_like(*like);
    tb.reduce(offset, out.numel(), out.data_ptr<T>());
    return out;
  };
  Tensor db_t = none_tensor(gx_t);
  if (bias_o && s.ln) {
    db_t = reduced(bias_o, a_bias);
  } else if (bias_o) {  // the sum of each block's dA over all T*B rows
    db_t = at::empty({GHh}, opts);
    for (int64_t col = 0; col < GHh; col += H) {
      if (chunked_dn && col == s.an) {
        T* db = db_t.data_ptr<T>() + col;
        for (int64_t u = 0; u < H; ++u) db[u] = static_cast<T>(dbias_n[u]);
        continue;
      }
      const auto [base, ld] = dA(col);
      db_t.narrow(0, col, H).copy_(at::from_blob(base, {T_ * B, H}, {ld, 1}, opts).sum(0));
    }
  }
  return {dgx_t, dh_a, dW_t, db_t, reduced(gain_o, a_gain)};
}

Outputs gru_forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t hidden, bool all_states,
                    double zoneout_rate, bool save) {
  (void)all_states;  // a GRU's only state is h
  const Tensor gx = get(in, GX) ? *get(in, GX) : *get(aux, X);  // gx, or x in inference
  if (gx.scalar_type() == at::kDouble) return forward<double>(in, aux, flags, hidden, zoneout_rate, save);
  TORCH_CHECK(gx.scalar_type() == at::kFloat, "rnnlab gru: float32 or float64 expected, got ", gx.scalar_type());
  return forward<float>(in, aux, flags, hidden, zoneout_rate, save);
}

std::vector<Tensor> gru_backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                                 const OptTensors& aux, int64_t flags, int64_t hidden, double zoneout_rate) {
  if (get(in, GX)->scalar_type() == at::kDouble)
    return backward<double>(grads, saved, in, aux, flags, hidden, zoneout_rate);
  return backward<float>(grads, saved, in, aux, flags, hidden, zoneout_rate);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("gru_forward(Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, bool all_states, float zoneout_rate, "
        "bool save) -> (Tensor[], Tensor[])",
        &gru_forward);
  m.def("gru_backward(Tensor?[] grads, Tensor[] saved, Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, "
        "float zoneout_rate) -> Tensor[]",
        &gru_backward);
}

}  // namespace rnnlab
