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
// gemm_tn); at K <= kOnePassWidth all three gradients come from one pass over dy (backward_one_pass).
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


// Inputs at most this wide (K) take the one-pass backward below.
constexpr int64_t kOnePassWidth = 16;

// Backward of a narrow input (K <= kOnePassWidth) in one pass over dy, each row of dy (N,) read once while it is
// in L1: dx_r = W^T dy_r (K dot products with the rows of W^T (K, N)), dW^T (K, N) += x_r (K,) outer dy_r, and
// db += dy_r. The three GEMM-shaped products of the general path each read all of dy (R, N) from memory, and
// at such a K they are thin (an output of K columns, an inner dimension of K): at the adding task's
// (R, N, K) = (5000, 128, 2), one thread, AMD Zen 4: dx 268 us, dW 126 us, db 82 us. K is a template
// parameter, so that the K dot products of a row accumulate in K vector registers side by side, and the
// update of dW^T takes 4 rows of dy per load and store of its accumulators. Per thread, dW^T and db accumulate
// in buffers of T (as a GEMM's sums do), summed over threads at the end.
template <typename T, int K>
void one_pass_rows(int64_t r0, int64_t r1, int64_t N, int64_t ld, const T* dy, const T* x, const T* wt, T* dx, T* aw,
                   T* ab) {
  constexpr int64_t L = kLanes<T>;
  const int64_t Nv = N / L * L;
  for (int64_t r = r0; dx && r < r1; ++r) {  // dx_r (K,) = W^T (K, N) dy_r
    const T* d = dy + r * N;
    Vec<T> acc[K];
    for (int k = 0; k < K; ++k) acc[k] = Vec<T>{};
    for (int64_t n = 0; n < Nv; n += L) {
      const Vec<T> dv = vload(d + n);
      for (int k = 0; k < K; ++k) acc[k] += dv * vload(wt + k * ld + n);
    }
    for (int k = 0; k < K; ++k) {
      T s = 0;
      for (int64_t l = 0; l < L; ++l) s += acc[k][l];
      for (int64_t n = Nv; n < N; ++n) s += d[n] * wt[k * ld + n];
      dx[r * K + k] = s;
    }
  }
  constexpr int64_t kRows = 4;
  for (int64_t r = r0; (aw || ab) && r < r1; r += kRows) {  // dW^T += x_r^T dy_r, db += dy_r, 4 rows at a time
    const int64_t m = std::min(kRows, r1 - r);
    const T* d[kRows];
    T xs[kRows][K];
    for (int64_t i = 0; i < kRows; ++i) {
      d[i] = dy + (r + std::min(i, m - 1)) * N;  // a short block repeats its last row with weight 0
      for (int k = 0; k < K; ++k) xs[i][k] = i < m && aw ? x[(r + i) * K + k] : T(0);
    }
    const T bw[kRows] = {T(1), T(m > 1), T(m > 2), T(m > 3)};
    int64_t n = 0;
    for (; n < Nv; n += L) {
      const Vec<T> d0 = vload(d[0] + n), d1 = vload(d[1] + n), d2 = vload(d[2] + n), d3 = vload(d[3] + n);
      if (aw) {
        for (int k = 0; k < K; ++k) {
          T* o = aw + k * ld + n;
          vstore(o, vload(o) + d0 * xs[0][k] + d1 * xs[1][k] + d2 * xs[2][k] + d3 * xs[3][k]);
        }
      }
      if (ab) vstore(ab + n, vload(ab + n) + d0 * bw[0] + d1 * bw[1] + d2 * bw[2] + d3 * bw[3]);
    }
    for (; n < N; ++n) {
      const T d0 = d[0][n], d1 = d[1][n], d2 = d[2][n], d3 = d[3][n];
      for (int k = 0; aw && k < K; ++k) aw[k * ld + n] += xs[0][k] * d0 + xs[1][k] * d1 + xs[2][k] * d2 + xs[3][k] * d3;
      if (ab) ab[n] += bw[0] * d0 + bw[1] * d1 + bw[2] * d2 + bw[3] * d3;
    }
  }
}

template <typename T, int K>
void backward_one_pass(int64_t R, int64_t N, const T* dy, const T* x, const T* w, T* dx, T* dw, T* db) {
  // rows of W^T and of the accumulators of dW^T lie ld apart: N rounded up to whole vectors plus one, so that
  // the K rows of a wide N (512 floats: 2 KiB) do not fall on the same L1 sets and 4 KiB-aliased addresses
  constexpr int64_t L = kLanes<T>;
  const int64_t ld = ((N + L - 1) / L + 1) * L;
  std::vector<T> wt(dx ? K * ld : 0);  // W^T (K, N)
  for (int64_t n = 0; dx && n < N; ++n)
    for (int k = 0; k < K; ++k) wt[k * ld + n] = w[n * K + k];
  const int threads = 2.0 * R * N * K < kParallelFlops ? 1 : std::max(1, at::get_num_threads());
  const int64_t width = (dw ? K * ld : 0) + (db ? N : 0);
  std::vector<T> acc(threads * width, T(0));  // per thread: dW^T (K, N) with row stride ld, db (N,)
  auto rows = [&](int64_t r0, int64_t r1, T* a) {
    one_pass_rows<T, K>(r0, r1, N, ld, dy, x, wt.data(), dx, dw ? a : nullptr, db ? a + (dw ? K * ld : 0) : nullptr);
  };
  if (threads == 1) {
    rows(0, R, acc.data());
  } else {
    at::parallel_for(0, threads, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) rows(i * R / threads, (i + 1) * R / threads, acc.data() + i * width);
    });
  }
  for (int t = 1; t < threads; ++t)
    for (int64_t j = 0; j < width; ++j) acc[j] += acc[t * width + j];
  for (int64_t n = 0; dw && n < N; ++n)
    for (int k = 0; k < K; ++k) dw[n * K + k] = acc[k * ld + n];
  if (db) std::copy(acc.begin() + (dw ? K * ld : 0), acc.begin() + width, db);
}

// backward_one_pass<T, K> for a K known at run time (1 <= K <= kOnePassWidth)
template <typename T, int K = 1>
void backward_one_pass(int64_t K_, int64_t R, int64_t N, const T* dy, const T* x, const T* w, T* dx, T* dw, T* db) {
  if constexpr (K <= kOnePassWidth) {
    if (K_ == K) return backward_one_pass<T, K>(R, N, dy, x, w, dx, dw, db);
    return backward_one_pass<T, K + 1>(K_, R, N, dy, x, w, dx, dw, db);
  }
}

template <typename T>
std::vector<Tensor> backward(const Tensor& dy, const Tensor& x, const Tensor& weight, bool has_bias,
                             const bool needs[3]) {
  const int64_t R = x.size(0), K = x.size(1), N = weight.size(0);
  std::vector<Tensor> grads{none_tensor(x), none_tensor(x), none_tensor(x)};
  if (K >= 1 && K <= kOnePassWidth) {
    if (needs[0]) grads[0] = at::empty({R, K}, x.options());
    if (needs[1]) grads[1] = at::empty({N, K}, x.options());
    if (has_bias && needs[2]) grads[2] = at::empty({N}, x.options());
    auto out = [](const Tensor& g) { return g.numel() ? g.data_ptr<T>() : nullptr; };
    backward_one_pass<T>(K, R, N, dy.data_ptr<T>(), x.data_ptr<T>(), weight.data_ptr<T>(), out(grads[0]),
                         out(grads[1]), out(grads[2]));
    return grads;
  }
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
