// IndRNN's fused forward and backward (Li et al. 2018): h_t = relu(gx_t + u * h_{t-1}), one scalar recurrence per
// (batch element, unit). The units are independent in time, so each thread runs whole sequences of its own
// (b, j) columns: no synchronisation between steps. gx is the input projection W x_t + b of every step (T, B, H);
// u the (already bounded) recurrent weight (H,); lengths (B,) int64 or absent (packed sequences: a finished
// sequence keeps its state). The math is rnnlab.cells.indrnn.IndRNNMath.step; the reference loop is the spec.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

namespace rnnlab {
namespace {

using at::Tensor;

int64_t length_of(const int64_t* lengths, int64_t b, int64_t T) { return lengths ? lengths[b] : T; }

// (hseq (T, B, H), h_T (B, H))
std::tuple<Tensor, Tensor> indrnn_forward(const Tensor& gx, const Tensor& h0, const Tensor& u,
                                          const std::optional<Tensor>& lengths) {
  TORCH_CHECK(gx.dim() == 3 && gx.is_contiguous() && h0.is_contiguous() && u.is_contiguous(),
              "indrnn_forward: expected contiguous gx (T, B, H), h0 (B, H), u (H,)");
  const int64_t T = gx.size(0), B = gx.size(1), H = gx.size(2);
  Tensor hseq = at::empty_like(gx);
  Tensor hT = at::empty_like(h0);
  const int64_t* len = lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "indrnn_forward", [&] {
    const scalar_t* g = gx.data_ptr<scalar_t>();
    const scalar_t* w = u.data_ptr<scalar_t>();
    const scalar_t* s0 = h0.data_ptr<scalar_t>();
    scalar_t* out = hseq.data_ptr<scalar_t>();
    scalar_t* last = hT.data_ptr<scalar_t>();
    at::parallel_for(0, B * H, 256, [&](int64_t begin, int64_t end) {
      for (int64_t col = begin; col < end; ++col) {
        const int64_t b = col / H, j = col % H, steps = length_of(len, b, T);
        scalar_t h = s0[col];
        for (int64_t t = 0; t < T; ++t) {
          if (t < steps) {
            const scalar_t pre = g[t * B * H + col] + w[j] * h;
            h = pre > scalar_t(0) ? pre : scalar_t(0);
          }
          out[t * B * H + col] = h;
        }
        last[col] = h;
      }
    });
  });
  return {hseq, hT};
}

// (d gx (T, B, H), d h0 (B, H), d u (H,)) from the gradients of hseq and h_T (either may be absent)
std::tuple<Tensor, Tensor, Tensor> indrnn_backward(const std::optional<Tensor>& grad_seq,
                                                   const std::optional<Tensor>& grad_last, const Tensor& hseq,
                                                   const Tensor& h0, const Tensor& u,
                                                   const std::optional<Tensor>& lengths) {
  const int64_t T = hseq.size(0), B = hseq.size(1), H = hseq.size(2);
  Tensor dgx = at::empty_like(hseq);
  Tensor dh0 = at::empty_like(h0);
  Tensor du_cols = at::zeros_like(h0);  // (B, H): d u per column, summed over b below (no races)
  const int64_t* len = lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES(hseq.scalar_type(), "indrnn_backward", [&] {
    const scalar_t* dy = grad_seq.has_value() ? grad_seq->data_ptr<scalar_t>() : nullptr;
    const scalar_t* dlast = grad_last.has_value() ? grad_last->data_ptr<scalar_t>() : nullptr;
    const scalar_t* hs = hseq.data_ptr<scalar_t>();
    const scalar_t* s0 = h0.data_ptr<scalar_t>();
    const scalar_t* w = u.data_ptr<scalar_t>();
    scalar_t* dg = dgx.data_ptr<scalar_t>();
    scalar_t* d0 = dh0.data_ptr<scalar_t>();
    scalar_t* du = du_cols.data_ptr<scalar_t>();
    at::parallel_for(0, B * H, 256, [&](int64_t begin, int64_t end) {
      for (int64_t col = begin; col < end; ++col) {
        const int64_t b = col / H, j = col % H, steps = length_of(len, b, T);
        scalar_t dh = dlast ? dlast[col] : scalar_t(0);
        scalar_t acc = 0;
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t idx = t * B * H + col;
          if (dy) dh += dy[idx];
          if (t >= steps) {  // finished: the state was carried, the step did nothing
            dg[idx] = 0;
            continue;
          }
          const scalar_t prev = t > 0 ? hs[idx - B * H] : s0[col];
          const scalar_t dpre = hs[idx] > scalar_t(0) ? dh : scalar_t(0);  // relu'(pre) = [h_t > 0]
          dg[idx] = dpre;
          acc += dpre * prev;
          dh = dpre * w[j];
        }
        d0[col] = dh;
        du[col] = acc;
      }
    });
  });
  return {dgx, dh0, du_cols.sum(0)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("indrnn_forward(Tensor gx, Tensor h0, Tensor u, Tensor? lengths) -> (Tensor, Tensor)");
  m.def("indrnn_backward(Tensor? grad_seq, Tensor? grad_last, Tensor hseq, Tensor h0, Tensor u, Tensor? lengths) "
        "-> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(rnnlab, CPU, m) {
  m.impl("indrnn_forward", &indrnn_forward);
  m.impl("indrnn_backward", &indrnn_backward);
}

}  // namespace rnnlab
