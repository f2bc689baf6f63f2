// xLSTM's sLSTM (Beck et al. 2024) over a whole sequence, forward and hand-written backward, on the registered-op
// interface of rnnlab/engine/ops.py. The math is rnnlab.cells.slstm.SLSTMMath.step; the reference loop is the spec.
//
// Forward, step t (per unit; R block-diagonal: one (d, d) block per gate and head):
//   a = gx_t + R h_{t-1}                                   (B, 4H), rows i, f, z, o
//   lf = log sigmoid(a_f)  (kExpForget: lf = a_f)
//   u = lf + m_{t-1};  m_t = max(u, a_i)
//   i' = exp(a_i - m_t);  f' = exp(u - m_t);  z = tanh(a_z);  o = sigmoid(a_o)
//   c_t = f' c_{t-1} + i' z;  n_t = f' n_{t-1} + i';  h_t = o c_t / n_t
// The cell state input and outputs carry c, n and m side by side: c0, c_T (B, 3H) and cseq (T, B, 3H) are
// [c | n | m]. Packed sequences: a finished sequence keeps all four states (its rows of d a are 0).
// Backward, step t, from dh, dc, dn, dm (the gradients of h_t, c_t, n_t, m_t):
//   do = dh c/n;  dc += dh o/n;  dn -= dh o c/n^2;  df' = dc c_{t-1} + dn n_{t-1};  di' = dc z + dn;
//   dz = dc i';  da_i = di' i';  dm~ = dm - di' i' - df' f';  du = df' f';  the max sends dm~ to its larger
//   argument (half to each at a tie, as torch.maximum);  da_f = du sigmoid(-a_f) (kExpForget: du);
//   da_z = dz (1 - z^2);  da_o = do o (1 - o);  dc_{t-1} = dc f';  dn_{t-1} = dn f';  dm_{t-1} = du;
//   dh_{t-1} = R^T da (one small GEMM per gate and head);  dR = sum_t da_t^T h_{t-1} (GEMMs after the loop).
#include "common.h"

namespace rnnlab {
namespace {

// Input order (GX, H0, C0, W_HH), aux slots (LENGTHS, X, W_IH, B_IH) and kExpForget: rnnlab_layout.h.
using namespace layout;
using namespace layout::slstm;

template <typename T> RNNLAB_INLINE T log_sigmoid(T x) {
  return (x < T(0) ? x : T(0)) - std::log1p(std::exp(-std::abs(x)));
}
template <typename T> RNNLAB_INLINE T sigm(T x) { return T(1) / (T(1) + std::exp(-x)); }

struct Dims3 {
  int64_t T, B, H, d, K;
};

// a (B, 4H) += R h (B, H), R (4H, d) block-diagonal: head k's block of gate g is rows g*H + k*d .. + d
template <typename T> void recurrent(const Dims3& s, const T* W, const T* h, T* a) {
  for (int64_t g = 0; g < 4; ++g)
    for (int64_t k = 0; k < s.K; ++k)
      gemm<T>(false, true, s.B, s.d, s.d, T(1), h + k * s.d, s.H, W + (g * s.H + k * s.d) * s.d, s.d, T(1),
              a + g * s.H + k * s.d, 4 * s.H);
}

// dh (B, H) += R^T da (B, 4H)
template <typename T> void recurrent_t(const Dims3& s, const T* W, const T* da, T* dh) {
  for (int64_t g = 0; g < 4; ++g)
    for (int64_t k = 0; k < s.K; ++k)
      gemm<T>(false, false, s.B, s.d, s.d, T(1), da + g * s.H + k * s.d, 4 * s.H, W + (g * s.H + k * s.d) * s.d,
              s.d, T(1), dh + k * s.d, s.H);
}

// outputs [hseq (T,B,H), h_T (B,H), [c|n|m]_T (B,3H), cseq (T,B,3H) with all_states]; saved (with save)
// [A (T,B,4H) the pre-activations, S (T,B,3H) the states c, n, m of every step]
template <typename T>
Outputs forward(const OptTensors& in, const OptTensors& aux, int64_t flags, bool all_states, bool save) {
  const auto [T_, B, D, like] = input_dims(get(in, GX), aux, X);
  StepInput<T> input = step_input<T>(get(in, GX), aux, X);
  const Tensor w_t = *get(in, W_HH);
  const int64_t H = D / 4, d = w_t.size(1);
  TORCH_CHECK(D == 4 * H && w_t.size(0) == D && d > 0 && H % d == 0, "rnnlab slstm: weight_hh of shape ",
              w_t.sizes(), " does not match gate width ", D);
  TORCH_CHECK(!get(aux, MASK_H) && !get(aux, MASK_C), "rnnlab slstm: the kernel takes no zoneout");
  TORCH_CHECK(get(in, C0)->dim() == 2 && get(in, C0)->size(0) == B && get(in, C0)->size(1) == 3 * H,
              "rnnlab slstm: c0 must be [c | n | m] of shape (B, 3H) = (", B, ", ", 3 * H, "), got ",
              get(in, C0)->sizes());
  const Dims3 s{T_, B, H, d, H / d};
  const bool exp_forget = flags & kExpForget;
  const int64_t* len = get(aux, LENGTHS) ? get(aux, LENGTHS)->data_ptr<int64_t>() : nullptr;
  const auto opts = like.options();
  const bool keep_states = save || all_states;
  Tensor hseq_t = at::empty({T_, B, H}, opts);
  Tensor S_t = at::empty({keep_states ? T_ : 2, B, 3 * H}, opts);  // all steps, or two alternating
  Tensor A_t = at::empty({save ? T_ : 1, B, 4 * H}, opts);
  const T* W = w_t.data_ptr<T>();
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* s0 = get(in, C0)->data_ptr<T>();
  T* hseq = hseq_t.data_ptr<T>();
  T* S = S_t.data_ptr<T>();
  for (int64_t t = 0; t < T_; ++t) {
    const T* hp = t ? hseq + (t - 1) * B * H : h0;
    const int64_t slot = keep_states ? t : t % 2, prev_slot = keep_states ? t - 1 : (t + 1) % 2;
    const T* sp = t ? S + prev_slot * B * 3 * H : s0;
    T* st = S + slot * B * 3 * H;
    T* a = A_t.data_ptr<T>() + (save ? t : 0) * B * 4 * H;
    std::memcpy(a, input.at(t), B * 4 * H * sizeof(T));
    recurrent<T>(s, W, hp, a);
    for (int64_t b = 0; b < B; ++b) {
      T* h = hseq + (t * B + b) * H;
      T* sc = st + b * 3 * H;
      const T* pc = sp + b * 3 * H;
      if (len && t >= len[b]) {  // finished: every state carried
        std::memcpy(h, hp + b * H, H * sizeof(T));
        std::memcpy(sc, pc, 3 * H * sizeof(T));
        continue;
      }
      const T* ar = a + b * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const T ai = ar[j], af = ar[H + j], az = ar[2 * H + j], ao = ar[3 * H + j];
        const T u = (exp_forget ? af : log_sigmoid(af)) + pc[2 * H + j];
        const T m = u > ai ? u : ai;
        const T ig = std::exp(ai - m), fg = std::exp(u - m);
        const T c = fg * pc[j] + ig * std::tanh(az);
        const T n = fg * pc[H + j] + ig;
        sc[j] = c;
        sc[H + j] = n;
        sc[2 * H + j] = m;
        h[j] = sigm(ao) * c / n;
      }
    }
  }
  const int64_t last = keep_states ? T_ - 1 : (T_ - 1) % 2;
  Tensor hT = hseq_t[T_ - 1].clone();
  Tensor sT = S_t[last].clone();
  std::vector<Tensor> outputs{hseq_t, hT, sT, all_states ? S_t : none_tensor(like)};
  std::vector<Tensor> saved;
  if (save) saved = {A_t, S_t};
  return {outputs, saved};
}

// grads [d hseq, d h_T, d [c|n|m]_T, d cseq]; saved [hseq, A, S]; returns [d gx, d h0, d c0, d weight_hh]
template <typename T>
std::vector<Tensor> backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                             const OptTensors& aux, int64_t flags) {
  const Tensor hseq_t = saved[0], A_t = saved[1], S_t = saved[2];
  const Tensor w_t = *get(in, W_HH);
  const int64_t T_ = hseq_t.size(0), B = hseq_t.size(1), H = hseq_t.size(2), d = w_t.size(1);
  const Dims3 s{T_, B, H, d, H / d};
  const bool exp_forget = flags & kExpForget;
  const int64_t* len = get(aux, LENGTHS) ? get(aux, LENGTHS)->data_ptr<int64_t>() : nullptr;
  const auto opts = hseq_t.options();
  const T* W = w_t.data_ptr<T>();
  const T* h0 = get(in, H0)->data_ptr<T>();
  const T* s0 = get(in, C0)->data_ptr<T>();
  const T* hseq = hseq_t.data_ptr<T>();
  const T* A = A_t.data_ptr<T>();
  const T* S = S_t.data_ptr<T>();
  const auto d_hseq_o = get(grads, 0), d_hT_o = get(grads, 1), d_sT_o = get(grads, 2), d_cseq_o = get(grads, 3);
  const T* d_hseq = ptr_or_null<T>(d_hseq_o);
  const T* d_cseq = ptr_or_null<T>(d_cseq_o);
  Tensor dA_t = at::empty({T_, B, 4 * H}, opts);
  Tensor dh_a = d_hT_o ? d_hT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, H}, opts);
  Tensor dh_b = at::empty({B, H}, opts);
  Tensor ds_t = d_sT_o ? d_sT_o->clone(at::MemoryFormat::Contiguous) : at::zeros({B, 3 * H}, opts);
  T* dA = dA_t.data_ptr<T>();
  T* ds = ds_t.data_ptr<T>();
  for (int64_t t = T_ - 1; t >= 0; --t) {
    T* dh = dh_a.data_ptr<T>();
    T* dhp = dh_b.data_ptr<T>();
    const T* sp = t ? S + (t - 1) * B * 3 * H : s0;
    const T* st = S + t * B * 3 * H;
    const T* a = A + t * B * 4 * H;
    T* da = dA + t * B * 4 * H;
    for (int64_t b = 0; b < B; ++b) {
      T* dhr = dh + b * H;
      T* dsr = ds + b * 3 * H;
      if (d_hseq) {
        const T* g = d_hseq + (t * B + b) * H;
        for (int64_t j = 0; j < H; ++j) dhr[j] += g[j];
      }
      if (d_cseq) {
        const T* g = d_cseq + (t * B + b) * 3 * H;
        for (int64_t j = 0; j < 3 * H; ++j) dsr[j] += g[j];
      }
      T* dar = da + b * 4 * H;
      T* dhpr = dhp + b * H;
      if (len && t >= len[b]) {  // finished: the states were carried
        std::fill(dar, dar + 4 * H, T(0));
        std::memcpy(dhpr, dhr, H * sizeof(T));
        continue;
      }
      std::fill(dhpr, dhpr + H, T(0));
      const T* ar = a + b * 4 * H;
      const T* pc = sp + b * 3 * H;
      const T* sc = st + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const T ai = ar[j], af = ar[H + j], az = ar[2 * H + j], ao = ar[3 * H + j];
        const T cp = pc[j], np = pc[H + j], mp = pc[2 * H + j];
        const T c = sc[j], n = sc[H + j], m = sc[2 * H + j];
        const T u = (exp_forget ? af : log_sigmoid(af)) + mp;
        const T ig = std::exp(ai - m), fg = std::exp(u - m), z = std::tanh(az), o = sigm(ao);
        const T dh_ = dhr[j];
        T dc = dsr[j], dn = dsr[H + j];
        const T dm = dsr[2 * H + j];
        const T d_o = dh_ * c / n;
        dc += dh_ * o / n;
        dn -= dh_ * o * c / (n * n);
        const T dfg = dc * cp + dn * np, dig = dc * z + dn;
        T dai = dig * ig, du = dfg * fg;
        const T dmt = dm - dig * ig - dfg * fg;
        if (u > ai) {
          du += dmt;
        } else if (ai > u) {
          dai += dmt;
        } else {
          du += dmt / T(2);
          dai += dmt / T(2);
        }
        dar[j] = dai;
        dar[H + j] = exp_forget ? du : du * sigm(-af);
        dar[2 * H + j] = dc * ig * (T(1) - z * z);
        dar[3 * H + j] = d_o * o * (T(1) - o);
        dsr[j] = dc * fg;
        dsr[H + j] = dn * fg;
        dsr[2 * H + j] = du;
      }
    }
    recurrent_t<T>(s, W, da, dhp);
    std::swap(dh_a, dh_b);
  }
  // dR = sum_t da_t^T h_{t-1}, block by block
  Tensor dW_t = at::empty_like(w_t);
  T* dW = dW_t.data_ptr<T>();
  for (int64_t g = 0; g < 4; ++g)
    for (int64_t k = 0; k < s.K; ++k) {
      const int64_t row = g * H + k * d;
      gemm<T>(true, false, d, d, B, T(1), dA + row, 4 * H, h0 + k * d, H, T(0), dW + row * d, d);
      if (T_ > 1)
        gemm<T>(true, false, d, d, (T_ - 1) * B, T(1), dA + B * 4 * H + row, 4 * H, hseq + k * d, H, T(1),
                dW + row * d, d);
    }
  return {dA_t, dh_a, ds_t, dW_t};
}

Outputs slstm_forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t hidden, bool all_states,
                      double zoneout_rate, bool save) {
  (void)hidden;
  TORCH_CHECK(zoneout_rate == 0.0, "rnnlab slstm: the kernel takes no zoneout");
  const Tensor like = get(in, GX) ? *get(in, GX) : *get(aux, X);
  if (like.scalar_type() == at::kDouble) return forward<double>(in, aux, flags, all_states, save);
  TORCH_CHECK(like.scalar_type() == at::kFloat, "rnnlab slstm: float32 or float64 expected, got ",
              like.scalar_type());
  return forward<float>(in, aux, flags, all_states, save);
}

std::vector<Tensor> slstm_backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                                   const OptTensors& aux, int64_t flags, int64_t hidden, double zoneout_rate) {
  (void)hidden;
  (void)zoneout_rate;
  if (saved[0].scalar_type() == at::kDouble) return backward<double>(grads, saved, in, aux, flags);
  return backward<float>(grads, saved, in, aux, flags);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("slstm_forward(Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, bool all_states, float zoneout_rate, "
        "bool save) -> (Tensor[], Tensor[])",
        &slstm_forward);
  m.def("slstm_backward(Tensor?[] grads, Tensor[] saved, Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, "
        "float zoneout_rate) -> Tensor[]",
        &slstm_backward);
}

}  // namespace rnnlab
