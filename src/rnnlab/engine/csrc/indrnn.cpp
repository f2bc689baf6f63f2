// IndRNN's fused forward and backward (Li et al. 2018) on the registered-op interface of rnnlab/engine/ops.py:
//
//   h~_t = relu(gx_t + u * h_{t-1})          one scalar recurrence per (batch element b, unit j)
//   h_t  = k h_{t-1} + (1 - k) h~_t          common.h's Keep: packed lengths (k = 1 after a sequence's end),
//                                            zoneout (k = mask in training, k = rate in evaluation)
// Backward, from dh_t:
//   dh~ = (1 - k) dh_t;  dpre = [h~_t > 0] dh~ = d gx_t;  du += dpre h_{t-1};  dh_{t-1} = k dh_t + u dpre
//
// The units are independent in time, so each thread runs whole sequences of its own block of (b, j) columns,
// vectorised across the block, with no synchronisation between steps. gx is the input projection W x_t + b of
// every step (T, B, H); given x in aux instead (inference), the kernel projects it itself, one GEMM. u (H,) is
// the already bounded recurrent weight (IndRNNMath.prepare). The reference loop is the spec.
#include "common.h"

#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>

namespace rnnlab {
namespace {

// Input order (GX, H0, W_HH) and aux slots (LENGTHS, MASK_H, X, W_IH, B_IH): rnnlab_layout.h from ops.py.
using namespace layout;
using namespace layout::indrnn;

constexpr int64_t kColumns = 64;  // columns of one block: one thread's unit of work, a few vectors wide

// The projection of every step, (T, B, H): gx if given, else x W_ih^T + b_ih.
Tensor step_inputs(const OptTensors& in, const OptTensors& aux) {
  if (auto gx = get(in, GX)) return gx->contiguous();
  const Tensor x = *get(aux, X), w = *get(aux, W_IH);
  const int64_t T_ = x.size(0), B = x.size(1);
  const Tensor x2 = x.reshape({T_ * B, x.size(2)});
  Tensor g = get(aux, B_IH) ? at::addmm(*get(aux, B_IH), x2, w.t()) : at::mm(x2, w.t());
  return g.view({T_, B, w.size(0)});
}

// k of column col = b * H + j at step t, as common.h's Keep::row (no clockwork here)
template <typename T> RNNLAB_INLINE T keep_at(const Keep<T>& keep, int64_t t, int64_t col) {
  const int64_t b = col / keep.n;
  if (keep.ended(t, b)) return T(1);
  return keep.mask ? keep.mask[t * keep.B * keep.n + col] : keep.rate;
}

// outputs [hseq (T,B,H), h_T (B,H), empty, empty]; saved (with save) [h~ (T,B,H) when mixing, else empty]
template <typename T>
Outputs forward(const OptTensors& in, const OptTensors& aux, double zoneout_rate, bool save) {
  const Tensor gx_t = step_inputs(in, aux);
  const int64_t T_ = gx_t.size(0), B = gx_t.size(1), H = gx_t.size(2);
  const Tensor u_t = *get(in, W_HH);
  TORCH_CHECK(u_t.dim() == 1 && u_t.size(0) == H, "rnnlab indrnn: weight_hh of shape ", u_t.sizes(),
              " does not match hidden size ", H);
  const Keep<T> keep = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, H);
  const bool mix = keep.any();
  Tensor hseq_t = at::empty({T_, B, H}, gx_t.options());
  Tensor htil_t = (mix && save) ? at::empty({T_, B, H}, gx_t.options()) : none_tensor(gx_t);
  const T* g = gx_t.data_ptr<T>();
  const T* u = u_t.data_ptr<T>();
  const T* h0 = get(in, H0)->data_ptr<T>();
  T* hs = hseq_t.data_ptr<T>();
  T* ht = (mix && save) ? htil_t.data_ptr<T>() : nullptr;
  const int64_t BH = B * H, blocks = (BH + kColumns - 1) / kColumns;
  at::parallel_for(0, blocks, 1, [&](int64_t k0, int64_t k1) {
    T h[kColumns], w[kColumns], kk[kColumns];
    for (int64_t blk = k0; blk < k1; ++blk) {
      const int64_t c0 = blk * kColumns, n = std::min(kColumns, BH - c0);
      for (int64_t i = 0; i < n; ++i) {
        h[i] = h0[c0 + i];
        w[i] = u[(c0 + i) % H];
      }
      for (int64_t t = 0; t < T_; ++t) {
        const T* gt = g + t * BH + c0;
        T* out = hs + t * BH + c0;
        if (!mix) {
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) {
            const T pre = gt[i] + w[i] * h[i];
            h[i] = pre > T(0) ? pre : T(0);
            out[i] = h[i];
          }
          continue;
        }
        for (int64_t i = 0; i < n; ++i) kk[i] = keep_at(keep, t, c0 + i);
        T* til = ht ? ht + t * BH + c0 : nullptr;
        for (int64_t i = 0; i < n; ++i) {
          const T pre = gt[i] + w[i] * h[i];
          const T a = pre > T(0) ? pre : T(0);
          if (til) til[i] = a;
          h[i] = kk[i] * h[i] + (T(1) - kk[i]) * a;
          out[i] = h[i];
        }
      }
    }
  });
  Tensor hT = hseq_t[T_ - 1].clone();
  std::vector<Tensor> outputs{hseq_t, hT, none_tensor(gx_t), none_tensor(gx_t)};
  std::vector<Tensor> saved;
  if (save) saved = {htil_t};
  return {outputs, saved};
}

// grads [d hseq, d h_T, -, -]; saved [hseq, h~ or empty]; returns [d gx, d h0, d u]
template <typename T>
std::vector<Tensor> backward(const OptTensors& grads, const std::vector<Tensor>& saved, const OptTensors& in,
                             const OptTensors& aux, double zoneout_rate) {
  const Tensor hseq_t = saved[0];
  const int64_t T_ = hseq_t.size(0), B = hseq_t.size(1), H = hseq_t.size(2);
  const Tensor h0_t = *get(in, H0), u_t = *get(in, W_HH);
  const Keep<T> keep = make_keep<T>(get(aux, LENGTHS), get(aux, MASK_H), zoneout_rate, B, H);
  const bool mix = keep.any();
  const T* hs = hseq_t.data_ptr<T>();
  const T* til = mix ? saved[1].data_ptr<T>() : hs;  // h~ (h itself without mixing)
  const T* h0 = h0_t.data_ptr<T>();
  const T* u = u_t.data_ptr<T>();
  const auto d_hseq_o = get(grads, 0), d_hT_o = get(grads, 1);
  const T* dy = ptr_or_null<T>(d_hseq_o);
  const T* dlast = ptr_or_null<T>(d_hT_o);
  Tensor dgx_t = at::empty({T_, B, H}, hseq_t.options());
  Tensor dh0_t = at::empty({B, H}, hseq_t.options());
  Tensor du_cols = at::empty({B, H}, hseq_t.options());  // d u of each column, summed over b below
  T* dg = dgx_t.data_ptr<T>();
  T* d0 = dh0_t.data_ptr<T>();
  T* duc = du_cols.data_ptr<T>();
  const int64_t BH = B * H, blocks = (BH + kColumns - 1) / kColumns;
  at::parallel_for(0, blocks, 1, [&](int64_t k0, int64_t k1) {
    T dh[kColumns], acc[kColumns], w[kColumns], kk[kColumns];
    for (int64_t blk = k0; blk < k1; ++blk) {
      const int64_t c0 = blk * kColumns, n = std::min(kColumns, BH - c0);
      for (int64_t i = 0; i < n; ++i) {
        dh[i] = dlast ? dlast[c0 + i] : T(0);
        acc[i] = T(0);
        w[i] = u[(c0 + i) % H];
        kk[i] = T(0);
      }
      for (int64_t t = T_ - 1; t >= 0; --t) {
        const int64_t base = t * BH + c0;
        const T* prev = t > 0 ? hs + base - BH : h0 + c0;
        const T* a = til + base;
        T* dgt = dg + base;
        if (dy) {
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) dh[i] += dy[base + i];
        }
        if (mix) {
          for (int64_t i = 0; i < n; ++i) kk[i] = keep_at(keep, t, c0 + i);
        }
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const T dpre = a[i] > T(0) ? (T(1) - kk[i]) * dh[i] : T(0);  // relu'(pre) = [h~ > 0]
          dgt[i] = dpre;
          acc[i] += dpre * prev[i];
          dh[i] = kk[i] * dh[i] + w[i] * dpre;
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        d0[c0 + i] = dh[i];
        duc[c0 + i] = acc[i];
      }
    }
  });
  return {dgx_t, dh0_t, du_cols.sum(0)};
}

Outputs indrnn_forward(const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t hidden,
                       bool all_states, double zoneout_rate, bool save) {
  (void)flags;
  (void)hidden;
  (void)all_states;  // one state: all_states adds nothing
  const Tensor like = get(in, GX) ? *get(in, GX) : *get(aux, X);
  if (like.scalar_type() == at::kDouble) return forward<double>(in, aux, zoneout_rate, save);
  TORCH_CHECK(like.scalar_type() == at::kFloat, "rnnlab indrnn: float32 or float64 expected, got ",
              like.scalar_type());
  return forward<float>(in, aux, zoneout_rate, save);
}

std::vector<Tensor> indrnn_backward(const OptTensors& grads, const std::vector<Tensor>& saved,
                                    const OptTensors& in, const OptTensors& aux, int64_t flags, int64_t hidden,
                                    double zoneout_rate) {
  (void)flags;
  (void)hidden;
  if (saved[0].scalar_type() == at::kDouble) return backward<double>(grads, saved, in, aux, zoneout_rate);
  return backward<float>(grads, saved, in, aux, zoneout_rate);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("indrnn_forward(Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, bool all_states, "
        "float zoneout_rate, bool save) -> (Tensor[], Tensor[])",
        &indrnn_forward);
  m.def("indrnn_backward(Tensor?[] grads, Tensor[] saved, Tensor?[] inputs, Tensor?[] aux, int flags, int hidden, "
        "float zoneout_rate) -> Tensor[]",
        &indrnn_backward);
}

}  // namespace rnnlab
