// The hoisted input projection of the fused engine: y = x W^T + b over all T*B rows at once, on the same
// packed-panel GEMM as the recurrent steps (common.h: PackedB), and its backward. torch's F.linear calls MKL's
// sgemm, which on this project's AMD AVX-512 machines runs ~20% slower than oneDNN's micro-kernel.
//
//   forward:  y (R, N) = x (R, K) W^T (K, N) + b
//   backward: dx (R, K) = dy (R, N) W (N, K);  dW (N, K) = dy^T x (one GEMM over R);  db = sum_r dy
//
// A narrow input (K <= kNarrowWidth, common.h: the workbench's adding, copy, pixel-MNIST, music, speech, MNIST-rows
// tasks have 1 to 28 input features) makes dW = dy^T x a thin product over all R rows, where BLAS runs well
// below its peak (measured on the AMD machines: 1.0 ms for dW at R = 5000, N = 128, K = 2, about 25x the time of
// reading dy once; 36 GFLOP/s at K = 28, N = 512). There dW^T = x^T dy goes through gemm_tn_narrow (common.h:
// gemm_tn), one pass over dy.
#include "common.h"

#include <ATen/ops/sum.h>

namespace rnnlab {
namespace {

template <typename T> Tensor forward(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias) {
  const int64_t R = x.size(0), K = x.size(1), N = weight.size(0);
  Tensor y = at::empty({R, N}, x.options());
  const PackedB<T> W_T(weight.data_ptr<T>(), K, K, N, true, R);  // W^T (K, N)
  W_T.multiply(R, x.data_ptr<T>(), K, y.data_ptr<T>(), N, false, bias ? bias->data_ptr<T>() : nullptr);
  return y;
}


template <typename T>
std::vector<Tensor> backward(const Tensor& dy, const Tensor& x, const Tensor& weight, bool has_bias,
                             const bool needs[3]) {
  const int64_t R = x.size(0), K = x.size(1), N = weight.size(0);
  std::vector<Tensor> grads{none_tensor(x), none_tensor(x), none_tensor(x)};
  if (needs[0]) {
    grads[0] = at::empty({R, K}, x.options());
    const PackedB<T> W(weight.data_ptr<T>(), K, N, K, false, R);  // W (N, K)
    W.multiply(R, dy.data_ptr<T>(), N, grads[0].data_ptr<T>(), K, false);
  }
  if (needs[1]) {
    grads[1] = at::empty({N, K}, x.options());
    gemm_tn<T>(R, N, K, dy.data_ptr<T>(), N, x.data_ptr<T>(), grads[1].data_ptr<T>(), false);  // dW = dy^T x
  }
  if (has_bias && needs[2]) grads[2] = dy.sum(0);
  return grads;
}

Tensor linear_forward(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1), "rnnlab linear: shapes ",
              x.sizes(), " and ", weight.sizes(), " do not match");
  if (x.scalar_type() == at::kDouble) return forward<double>(x, weight, bias);
  return forward<float>(x, weight, bias);
}

std::vector<Tensor> linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, bool has_bias,
                                    bool need_x, bool need_weight, bool need_bias) {
  const bool needs[3] = {need_x, need_weight, need_bias};
  if (x.scalar_type() == at::kDouble) return backward<double>(dy, x, weight, has_bias, needs);
  return backward<float>(dy, x, weight, has_bias, needs);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("linear_forward(Tensor x, Tensor weight, Tensor? bias) -> Tensor", &linear_forward);
  m.def("linear_backward(Tensor dy, Tensor x, Tensor weight, bool has_bias, bool need_x, bool need_weight, "
        "bool need_bias) -> Tensor[]",
        &linear_backward);
}

}  // namespace rnnlab
