// Fused Elman RNN over a whole sequence (tanh or ReLU, as torch's nn.RNN), forward and hand-written backward,
// with or without layer_norm; the Clockwork RNN is the same kernel with its module schedule as state mixing.
//
// Forward, step t:
//   a   = gx_t + LN(h_{t-1} W_hh^T) * ln_hh + b_hh         (B, H)
//   h~  = phi(a),  phi = tanh or ReLU
//   h_t = k h_{t-1} + (1 - k) h~                             (common.h: Keep; for the Clockwork RNN k = 1 on
//                                                             the units of modules that are not active at t,
//                                                             and W_hh arrives masked by ClockworkMath.prepare)
// Backward, step t, from dh_t:
//   dh~ = (1 - k) dh_t;  da = dh~ phi'(a) = dx_t  (tanh: 1 - h~^2; ReLU: [h~ > 0])
//   dh_{t-1} = k dh_t + LN'(da) W_hh                        (one GEMM per step)
//   dW_hh = sum_t LN'(da_t)^T h_{t-1}                        (one GEMM over T*B after the loop)
#include "common.h"

namespace rnnlab {
namespace {

// The flags (kRelu, kClockwork, kLayerNorm), the order of the inputs (GX, H0, W_HH, B_HH, LN_HH) and of the aux
// slots (LENGTHS, MASK_H, PERIODS, CLOCK0, X, ...): generated from rnnlab/engine/ops.py (rnnlab_layout.h).
using namespace layout;
using namespace layout::rnn;

template <typename T> Keep<T> make_rnn_keep(const OptTensors& aux, double zoneout_rate, int64_t B, int64_t H) {
  Keep<T> keep = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, H);
  if (auto periods = get(aux, PERIODS)) {
    keep.periods = periods->data_ptr<T>();
    keep.clock0 = get(aux, CLOCK0)->data_ptr<T>();
  }
  return keep;
}

// Forward. outputs [hseq (T,B,H), h_T, empty, empty]; saved (with save) [H~ (T,B,H) before mixing (mixing
// only; else hseq is h~), Z (T,B,H) raw products (layer_norm only)].
template <typename T>
Outputs forward(const OptTensors& in, const OptTensors& aux, int64_t flags, double zoneout_rate, bool save) {
  const Tensor w_hh_t = *get(in, W_HH);
  const auto [T_, B, H, gx_t] = input_dims(get(in, GX), aux, X);
  StepInput<T> input = step_input<T>(get(in, GX), aux, X);
  TORCH_CHECK(w_hh_t.size(0) == H && w_hh_t.size(1) == H, "rnnlab rnn: weight_hh of shape ", w_hh_t.sizes(),
              " does not match hidden size ", H);
  const bool relu = flags & kRelu, ln = flags & kLayerNorm;
  const ConstRows<T> consts(H);
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* W = w_hh_t.data_ptr<T>();
  const T* bias = or_const(get(in, B_HH), consts.zeros.data());
  const T* gain = ptr_or_null<T>(get(in, LN_HH));
  const Keep<T> keep = make_rnn_keep<T>(aux, zoneout_rate, B, H);
  const bool mix = keep.any();

  const int64_t n_keep = save ? T_ : 1;
  const auto opts = gx_t.options();
  Tensor hseq_t = at::empty({T_, B, H}, opts);
  Tensor Ht_t = mix ? at::empty({n_keep, B, H}, opts) : none_tensor(gx_t);
  Tensor Z_t = ln ? at::empty({n_keep, B, H}, opts) : none_tensor(gx_t);
  T* hseq = hseq_t.data_ptr<T>();
  ThreadBuffers tb(H * sizeof(T), 0);

  const PackedB<T> W_T(W, H, H, H, true, T_ * B);  // W_hh^T

  for (int64_t t = 0; t < T_; ++t) {
    const int64_t slot = save ? t : 0;
    const T* hprev = t ? hseq + (t - 1) * B * H : h0;
    T* ht = hseq + t * B * H;
    T* htil = mix ? Ht_t.data_ptr<T>() + slot * B * H : ht;  // h~ (h_t itself without mixing)
    T* Zt = ln ? Z_t.data_ptr<T>() + slot * B * H : htil;
    const T* gxt = input.at(t);
    auto rows = [&](int64_t b, int thread) {
      const T* x = gxt + b * H;
      const T* z = Zt + b * H;
      T* a = htil + b * H;
      T mean_ = 0, rstd_ = 1;
      if (ln) ln_stats(z, H, mean_, rstd_);
      const T mean = mean_, rstd = rstd_;
      const T* g = gain ? gain : consts.ones.data();
      if (relu) {
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) {
          const T v = x[u] + (z[u] - mean) * rstd * g[u] + bias[u];
          a[u] = v > T(0) ? v : T(0);
        }
      } else {
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) a[u] = fast_tanh(x[u] + (z[u] - mean) * rstd * g[u] + bias[u]);
      }
      if (mix) {
        T* kbuf = tb.rows<T>(thread);
        keep.row(t, b, kbuf);
        const T* hp = hprev + b * H;
        T* hn = ht + b * H;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) hn[u] = kbuf[u] * hp[u] + (T(1) - kbuf[u]) * a[u];
      }
    };
    for_step_rows(B, 2.0 * H * H + 20.0 * H, W_T.bytes(), [&](int64_t r0, int64_t r1, int thread) {
      W_T.multiply(r1 - r0, hprev + r0 * H, H, Zt + r0 * H, H, false, nullptr, false);  // h_{t-1} W_hh^T
      for (int64_t b = r0; b < r1; ++b) rows(b, thread);
    });
  }
  Tensor hT = hseq_t[T_ - 1].clone();
  std::vector<Tensor> outputs{hseq_t, hT, none_tensor(gx_t), none_tensor(gx_t)};
  std::vector<Tensor> saved;
  if (save) saved = {Ht_t, Z_t};
  return {outputs, saved};
}

// Backward. grads [d hseq, d h_T, -, -]; saved [hseq] + the forward's saved list.
template <typename T>
std::vector<Tensor> backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                             const OptTensors& aux, int64_t flags, double zoneout_rate) {
  const Tensor gx_t = *get(in, GX), w_hh_t = *get(in, W_HH);
  const int64_t T_ = gx_t.size(0), B = gx_t.size(1), H = gx_t.size(2);
  const bool relu = flags & kRelu, ln = flags & kLayerNorm;
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* W = w_hh_t.data_ptr<T>();
  const auto bias_o = get(in, B_HH), gain_o = get(in, LN_HH);
  const T* gain = ptr_or_null<T>(gain_o);
  const Keep<T> keep = make_rnn_keep<T>(aux, zoneout_rate, B, H);
  const bool mix = keep.any();
  const ConstRows<T> consts(H);

  const T* hseq = saved[0].data_ptr<T>();
  const T* Htil = mix ? saved[1].data_ptr<T>() : hseq;
  const T* Z = ln ? saved[2].data_ptr<T>() : nullptr;
  const auto d_hseq_o = get(grads, 0), d_hT_o = get(grads, 1);
  const T* d_hseq = ptr_or_null<T>(d_hseq_o);

  const auto opts = gx_t.options();
  Tensor dgx_t = at::empty({T_, B, H}, opts);
  Tensor dZ_t = ln ? at::empty({T_, B, H}, opts) : none_tensor(gx_t);
  Tensor dh_a = d_hT_o ? d_hT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, H}, opts);
  Tensor dh_b = at::empty({B, H}, opts);
  T* dgx = dgx_t.data_ptr<T>();
  T* dA = ln ? dZ_t.data_ptr<T>() : dgx;  // gradient of the raw recurrent product
  const int64_t a_gain = 0;
  ThreadBuffers tb(H * sizeof(T), H);

  const PackedB<T> Wp(W, H, H, H, false, T_ * B);  // W_hh

  for (int64_t t = T_ - 1; t >= 0; --t) {
    T* dh = dh_a.data_ptr<T>();
    T* dhn = dh_b.data_ptr<T>();
    const T* htil = Htil + t * B * H;
    T* dxt = dgx + t * B * H;
    const T* dhs = d_hseq ? d_hseq + t * B * H : nullptr;
    auto rows = [&](int64_t b, int thread) {
      double* acc = tb.accumulators(thread);
      T* d = dh + b * H;
      const T* hv = htil + b * H;
      T* dx = dxt + b * H;
      if (dhs) {
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) d[u] += dhs[b * H + u];
      }
      const T* kk = consts.zeros.data();
      if (mix) {
        T* kbuf = tb.rows<T>(thread);
        keep.row(t, b, kbuf);
        kk = kbuf;
        T* dn = dhn + b * H;
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) dn[u] = kk[u] * d[u];
      }
      if (relu) {
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) dx[u] = hv[u] > T(0) ? (T(1) - kk[u]) * d[u] : T(0);
      } else {
#pragma omp simd
        for (int64_t u = 0; u < H; ++u) dx[u] = (T(1) - kk[u]) * d[u] * (T(1) - hv[u] * hv[u]);
      }
      if (ln) {
        const T* z = Z + (t * B + b) * H;
        T mean, rstd;
        ln_stats(z, H, mean, rstd);
        ln_backward(z, H, mean, rstd, gain, dx, dA + (t * B + b) * H, acc + a_gain);
      }
    };
    for_step_rows(B, 2.0 * H * H + 30.0 * H, Wp.bytes(), [&](int64_t r0, int64_t r1, int thread) {
      for (int64_t b = r0; b < r1; ++b) rows(b, thread);
      // dh_{t-1} (+)= dA_t (n, H) W_hh (H, H)
      Wp.multiply(r1 - r0, dA + (t * B + r0) * H, H, dhn + r0 * H, H, mix, nullptr, false);
    });
    std::swap(dh_a, dh_b);
  }
  Tensor dW_t = at::empty_like(w_hh_t);
  gemm_prev<T>(T_, B, H, H, dA, H, h0, hseq, dW_t.data_ptr<T>(), false);
  auto reduced = [&](const std::optional<Tensor>& like, int64_t offset) {
    if (!like) return none_tensor(gx_t);
    Tensor out = at::empty_like(*like);
    tb.reduce(offset, out.numel(), out.data_ptr<T>());
    return out;
  };
  Tensor db_t = bias_o ? dgx_t.sum(at::IntArrayRef{0, 1}) : none_tensor(gx_t);  // a = gx + ... + b: db = sum dgx
  return {dgx_t, dh_a, dW_t, db_t, reduced(gain_o, a_gain)};
}

Outputs rnn_forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t hidden, bool all_states,
                    double zoneout_rate, bool save) {
  (void)hidden;
  (void)all_states;  // the clock of a Clockwork state is computed in Python
  const Tensor gx = get(in, GX) ? *get(in, GX) : *get(aux, X);  // gx, or x in inference
  if (gx.scalar_type() == at::kDouble) return forward<double>(in, aux, flags, zoneout_rate, save);
  TORCH_CHECK(gx.scalar_type() == at::kFloat, "rnnlab rnn: float32 or float64 expected, got ", gx.scalar_type());
  return forward<float>(in, aux, flags, zoneout_rate, save);
}

std::vector<Tensor> rnn_backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                                 const OptTensors& aux, int64_t flags, int64_t hidden, double zoneout_rate) {
  (void)hidden;
  if (get(in, GX)->scalar_type() == at::kDouble) return backward<double>(grads, saved, in, aux, flags, zoneout_rate);
  return backward<float>(grads, saved, in, aux, flags, zoneout_rate);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("rnn_forward(Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, bool all_states, float zoneout_rate, "
        "bool save) -> (Tensor[], Tensor[])",
        &rnn_forward);
  m.def("rnn_backward(Tensor?[] grads, Tensor[] saved, Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, "
        "float zoneout_rate) -> Tensor[]",
        &rnn_backward);
}

}  // namespace rnnlab
