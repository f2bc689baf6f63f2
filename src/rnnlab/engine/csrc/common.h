// Shared pieces of rnnlab's fused CPU kernels: fast vectorisable activations, a row-major GEMM on the BLAS
// that torch itself uses, the "keep" factors of state mixing (packed sequences, zoneout, clockwork), layer
// normalisation of one row, per-thread accumulators for parameter gradients, and a parallel loop over rows.
//
// Layout conventions of every kernel: sequences are contiguous row-major (T, B, n); one step is a (B, n)
// matrix; "row b" is one batch element. Weights are torch's (rows, cols) row-major.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>
#include <ATen/native/CPUBlas.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "rnnlab_layout.h"  // generated into the build directory from rnnlab/engine/ops.py

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <cstdlib>
#include <tuple>
#include <type_traits>
#include <vector>

namespace rnnlab {

using at::Tensor;
using OptTensors = c10::List<std::optional<Tensor>>;
using Outputs = std::tuple<std::vector<Tensor>, std::vector<Tensor>>;  // (outputs, saved for backward)

// ---------------------------------------------------------------------------------------------------------
// Argument helpers.
inline std::optional<Tensor> get(const OptTensors& list, size_t i) {
  if (i >= list.size()) return std::nullopt;
  std::optional<Tensor> t = list.get(i);
  if (t && !t->defined()) return std::nullopt;
  return t;
}

template <typename T> inline const T* ptr_or_null(const std::optional<Tensor>& t) {
  return t ? t->data_ptr<T>() : nullptr;
}

// the tensor's data, or a row of constants standing in for it
template <typename T> inline const T* or_const(const std::optional<Tensor>& t, const T* fallback) {
  return t ? t->data_ptr<T>() : fallback;
}

inline Tensor empty_like_dtype(at::IntArrayRef sizes, const Tensor& like) {
  return at::empty(sizes, like.options());
}

inline Tensor none_tensor(const Tensor& like) { return at::empty({0}, like.options()); }

// ---------------------------------------------------------------------------------------------------------
// A pool of the large per-sequence buffers (saved gates, state sequences, their gradients). A training loop
// allocates the same few buffers at every call and frees them after the backward; fresh from the system,
// each 4 KiB page of them costs a page fault (zeroed by the kernel) on first touch, about 1 us on these
// virtual machines: up to half the time of a whole forward at the workbench's shapes. Freed buffers go back
// to the pool (at most kPoolBytes of them, else to the system) and the next call of the same shape reuses them,
// already mapped. Buffers below kPoolMinBytes come from torch's allocator as usual.
constexpr size_t kPoolMinBytes = 64 * 1024;
constexpr size_t kPoolBytes = size_t(256) << 20;

class BufferPool {
 public:
  // a block of at least `bytes` (64-byte aligned): a free one of no more than twice the size, or a new one
  std::pair<void*, size_t> take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= 2 * bytes) {
        std::pair<void*, size_t> block{it->second, it->first};
        free_bytes_ -= it->first;
        free_.erase(it);
        return block;
      }
    }
    const size_t size = (bytes + 4095) / 4096 * 4096;
    void* p = std::aligned_alloc(4096, size);
    TORCH_CHECK(p, "rnnlab: out of memory allocating ", size, " bytes");
    return {p, size};
  }

  void give(void* p, size_t size) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_bytes_ + size <= kPoolBytes) {
        free_.emplace(size, p);
        free_bytes_ += size;
        return;
      }
    }
    std::free(p);
  }

  static BufferPool& instance() {
    static BufferPool* pool = new BufferPool();  // never destroyed: tensors may be freed after static destructors
    return *pool;
  }

 private:
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // size -> block
  size_t free_bytes_ = 0;
};

// at::empty(sizes, options), from the pool when large (a CPU tensor of the pool's memory: freeing it returns the
// block to the pool)
inline Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const size_t bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  if (bytes < kPoolMinBytes) return at::empty(sizes, options);
  auto [data, size] = BufferPool::instance().take(bytes);
  return at::from_blob(
      data, sizes, [size = size](void* p) { BufferPool::instance().give(p, size); }, options.device(at::kCPU));
}


// ---------------------------------------------------------------------------------------------------------
// Activations. Branch-free so that `#pragma omp simd` loops over them vectorise (no libm calls inside).
// exp: x = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor polynomial (degree 7 in float, 13 in double:
// truncation error below one ulp), 2^n assembled in the exponent bits.
template <typename T> struct ExpTraits;
template <> struct ExpTraits<float> {
  using Int = int32_t;
  static constexpr int kBias = 127, kMantissa = 23;
  static constexpr float kMax = 88.0f, kMin = -87.0f;
};
template <> struct ExpTraits<double> {
  using Int = int64_t;
  static constexpr int kBias = 1023, kMantissa = 52;
  static constexpr double kMax = 708.0, kMin = -708.0;
};

#define RNNLAB_INLINE inline __attribute__((always_inline))

template <typename T> RNNLAB_INLINE T fast_exp(T x) {
  using E = ExpTraits<T>;
  x = x > E::kMax ? E::kMax : x;
  x = x < E::kMin ? E::kMin : x;
  const T n = std::nearbyint(x * T(1.4426950408889634));        // round(x / ln 2)
  const T r = (x - n * T(0.693145751953125)) - n * T(1.4286068203094173e-06);  // ln 2 split hi + lo
  T p;
  if constexpr (sizeof(T) == 4) {
    p = T(1.0 / 5040);
    p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
  } else {
    p = T(1.0 / 6227020800.0);
    p = p * r + T(1.0 / 479001600.0);
    p = p * r + T(1.0 / 39916800.0);
    p = p * r + T(1.0 / 3628800.0);
    p = p * r + T(1.0 / 362880.0);
    p = p * r + T(1.0 / 40320.0);
    p = p * r + T(1.0 / 5040);
    p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
  }
  p = p * r + T(1.0 / 6);
  p = p * r + T(0.5);
  p = p * r + T(1);
  p = p * r + T(1);
  const typename E::Int bits = (static_cast<typename E::Int>(n) + E::kBias) << E::kMantissa;
  T scale;
  std::memcpy(&scale, &bits, sizeof(T));
  return p * scale;
}

// tanh. float: Eigen's rational approximation (odd degree 13 over even degree 6 on [-7.99, 7.99], max abs
// error 3.4e-7): no exp, one division, short dependency chains. double: 2 sigmoid(2x) - 1 through exp.
// NaN stays NaN (the clamps let it through).
template <typename T> RNNLAB_INLINE T fast_tanh(T x) {
  if constexpr (sizeof(T) == 4) {
    const T c = 7.99881172180175781f;
    x = x > c ? c : x;
    x = x < -c ? -c : x;
    const T x2 = x * x;
    T p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    T q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
  } else {
    return T(2) / (T(1) + fast_exp(T(-2) * x)) - T(1);
  }
}

// sigmoid. float: (1 + tanh(x / 2)) / 2 (absolute error ~2e-7; gates need absolute accuracy). double: 1 / (1 +
// exp(-x)).
template <typename T> RNNLAB_INLINE T sigmoid(T x) {
  if constexpr (sizeof(T) == 4) {
    return T(0.5) + T(0.5) * fast_tanh(T(0.5) * x);
  } else {
    return T(1) / (T(1) + fast_exp(-x));
  }
}

// ---------------------------------------------------------------------------------------------------------
// GEMM, row-major: C (M, N) = alpha * op(A) op(B) + beta * C, op(A) (M, K), op(B) (K, N). Calls the BLAS
// (MKL) that libtorch_cpu links and exports, without building tensors: a recurrent step at small shapes is a
// few microseconds of arithmetic, so per-call overhead matters. Without those symbols (RNNLAB_BLAS=0) it
// goes through at::addmm_out on tensor views.
#if RNNLAB_BLAS
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
}
#endif

#if !RNNLAB_BLAS
template <typename T>
inline void gemm_fallback(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  // op(X) as a strided view: X stored (rows, ld) row-major, transposed by swapping strides
  auto view = [&](const T* X, int64_t rows, int64_t cols, int64_t ld, bool t) {
    return t ? at::from_blob(const_cast<T*>(X), {rows, cols}, {1, ld}, opts)
             : at::from_blob(const_cast<T*>(X), {rows, cols}, {ld, 1}, opts);
  };
  Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  at::addmm_out(c, c, view(A, M, K, lda, ta), view(B, K, N, ldb, tb), beta, alpha);
}
#endif

template <typename T>
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta * C
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
#if RNNLAB_BLAS
  // Column-major BLAS sees row-major C as C^T (N, M): C^T = op(B)^T op(A)^T.
  const char tA = ta ? 'T' : 'N', tB = tb ? 'T' : 'N';
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int la = static_cast<int>(lda), lb = static_cast<int>(ldb), lc = static_cast<int>(ldc);
  if constexpr (sizeof(T) == 4) {
    sgemm_(&tB, &tA, &m, &n, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
  } else {
    dgemm_(&tB, &tA, &m, &n, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
  }
#else
  gemm_fallback<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

template <typename T>
inline void gemm_tn_narrow(int64_t R, int64_t M, int64_t N, const T* A, const T* B, int64_t ldb, T* C, bool accumulate);

// Inputs or states at most this wide make the weight gradient X^T Prev (inner dimension: all T*B rows) a thin
// product, where BLAS runs well below its peak (measured on the AMD EPYC (Zen 4) machines, one thread, GFLOP/s
// BLAS / gemm_tn_narrow for (rows, width, N): (5000, 32, 128) 63 / 82, (1792, 28, 512) 36 / 58, (2048, 48, 256)
// 74 / 92, but (6400, 64, 256) 68 / 57): there it goes through gemm_tn_narrow.
constexpr int64_t kNarrowWidth = 48;

// out (n, m) (+)= X^T P for X (R, n) with row stride ldx and P (R, m): the weight gradient of R rows
template <typename T>
inline void gemm_tn(int64_t R, int64_t n, int64_t m, const T* X, int64_t ldx, const T* P, T* out, bool accumulate) {
  if (R == 0 || m > kNarrowWidth) {
    gemm<T>(true, false, n, m, R, T(1), X, ldx, P, m, accumulate ? T(1) : T(0), out, m);
    return;
  }
  std::vector<T> t(m * n);  // out^T (m, n) = P^T X
  gemm_tn_narrow<T>(R, m, n, P, X, ldx, t.data(), false);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) out[i * m + j] = accumulate ? out[i * m + j] + t[j * n + i] : t[j * n + i];
}

// sum_t X_t^T Prev_t where Prev_t is the state before step t: s0 for t = 0, seq[t-1] after.
// X (T, B, n) with row stride ldx (a column block of a wider buffer); seq (T, B, m); out (n, m) is
// overwritten (accumulate = false) or added to.
template <typename T>
inline void gemm_prev(int64_t T_, int64_t B, int64_t n, int64_t m, const T* X, int64_t ldx, const T* s0,
                      const T* seq, T* out, bool accumulate) {
  gemm_tn<T>(B, n, m, X, ldx, s0, out, accumulate);
  if (T_ > 1) gemm_tn<T>((T_ - 1) * B, n, m, X + B * ldx, ldx, seq, out, true);
}

// out (n, m) (+)= sum_{t in [t0, t1)} X_t^T Prev_t, X the rows of steps t0..t1-1 only (row stride ldx): the
// weight gradient of a chunk of steps (the states before steps t0.. are contiguous in seq when t0 > 0)
template <typename T>
inline void gemm_prev_steps(int64_t t0, int64_t t1, int64_t B, int64_t n, int64_t m, const T* X, int64_t ldx,
                            const T* s0, const T* seq, T* out, bool accumulate) {
  if (t0 == 0) return gemm_prev<T>(t1, B, n, m, X, ldx, s0, seq, out, accumulate);
  gemm_tn<T>((t1 - t0) * B, n, m, X, ldx, seq + (t0 - 1) * B * m, out, accumulate);
}

// Steps per chunk of a buffer of per-step rows (B, n) that is consumed by a weight-gradient GEMM every chunk
// (instead of keeping all T steps): about kChunkBytes, and at least kChunkRows rows so the GEMM's inner
// dimension stays long.
constexpr int64_t kChunkBytes = 256 * 1024;
constexpr int64_t kChunkRows = 256;

inline int64_t chunk_steps(int64_t T_, int64_t B, int64_t row_bytes) {
  const int64_t by_bytes = kChunkBytes / std::max<int64_t>(1, B * row_bytes);
  const int64_t by_rows = (kChunkRows + B - 1) / B;
  return std::clamp<int64_t>(std::max(by_bytes, by_rows), 1, T_);
}

// ---------------------------------------------------------------------------------------------------------
// The engine's own GEMM micro-kernel, for the products that recur at every step (small M, K <= a few hundred):
// C (M, N) (+)= A (M, K) B (K, N) with B packed once per sequence into panels of kNR columns (K x kNR,
// contiguous, the last one zero-padded). A block of kMR rows of C times one panel stays in registers: per k,
// two vector loads of B, kMR broadcasts of A and 2 kMR fused multiply-adds. Portable C++ (GCC vector
// extensions): 256-bit vectors on AVX2 machines, 512-bit where AVX-512 is available (compiled with
// -march=native), the same code for float and double, so the float64 tests run it too.
// Why not a library call per block: at the recurrent shapes (a step of 16-128 rows, K = H) the per-call
// overhead of BLAS or oneDNN's brgemm (argument checks, kernel lookup, packing) is comparable with the
// arithmetic, and both are tuned for large, square products.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#else
constexpr int kVecBytes = 32;
#endif
typedef float VecF __attribute__((vector_size(kVecBytes), aligned(4)));
typedef double VecD __attribute__((vector_size(kVecBytes), aligned(8)));
template <typename T> struct VecOf;
template <> struct VecOf<float> { using type = VecF; };
template <> struct VecOf<double> { using type = VecD; };
template <typename T> using Vec = typename VecOf<T>::type;
template <typename T> constexpr int64_t kLanes = kVecBytes / sizeof(T);
template <typename T> constexpr int64_t kNR = 2 * kLanes<T>;  // columns of a panel: two vectors
constexpr double kParallelFlops = 2e6;  // below this a GEMM runs on one thread
constexpr int64_t kMR = 6;   // rows of C per register block (6 x 2 accumulators + 2 + 1 fit AVX2's 16 registers)
constexpr int64_t kKC = 256;  // depth of a block of K: a panel's block (kKC x kNR) stays in L1 across row blocks

template <typename T> RNNLAB_INLINE Vec<T> vload(const T* p) { return *reinterpret_cast<const Vec<T>*>(p); }
template <typename T> RNNLAB_INLINE void vstore(T* p, Vec<T> v) { *reinterpret_cast<Vec<T>*>(p) = v; }

// C rows [0, MR) x panel columns [0, nb) (+)= A (MR, K) B (K, nb): element (r, k) of A at A[r * sar + k * sak],
// row k of B at B + k * ldb (a packed panel: ldb = kNR; or B in place, then nb = kNR columns are read);
// accumulate: add to C, else overwrite.
template <typename T, int MR>
RNNLAB_INLINE void micro_kernel(int64_t K, const T* A, int64_t sar, int64_t sak, const T* B, int64_t ldb, T* C,
                                int64_t ldc, int64_t nb, bool accumulate) {
  constexpr int64_t L = kLanes<T>, NR = kNR<T>;
  Vec<T> c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = Vec<T>{};
  for (int64_t k = 0; k < K; ++k) {
    const Vec<T> b0 = vload(B + k * ldb), b1 = vload(B + k * ldb + L);
    for (int r = 0; r < MR; ++r) {
      const T a = A[r * sar + k * sak];
      c0[r] += b0 * a;
      c1[r] += b1 * a;
    }
  }
  if (nb == NR) {
    for (int r = 0; r < MR; ++r) {
      T* c = C + r * ldc;
      if (accumulate) {
        c0[r] += vload(c);
        c1[r] += vload(c + L);
      }
      vstore(c, c0[r]);
      vstore(c + L, c1[r]);
    }
  } else {
    alignas(64) T tmp[2 * L];
    for (int r = 0; r < MR; ++r) {
      vstore(tmp, c0[r]);
      vstore(tmp + L, c1[r]);
      T* c = C + r * ldc;
      for (int64_t j = 0; j < nb; ++j) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
    }
  }
}

// Rows [0, M) of C (M, nb) (+)= A (M, K) B (K, nb), B one panel (see micro_kernel for the strides); depth
// blocks of kKC after the first accumulate.
template <typename T>
inline void panel_multiply(int64_t M, int64_t K, const T* A, int64_t sar, int64_t sak, const T* B, int64_t ldb,
                           T* C, int64_t ldc, int64_t nb, bool accumulate) {
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kb = std::min(kKC, K - k0);
    const bool acc = accumulate || k0 > 0;
    const T* a = A + k0 * sak;
    const T* b = B + k0 * ldb;
    int64_t i = 0;
    for (; i + kMR <= M; i += kMR)
      micro_kernel<T, kMR>(kb, a + i * sar, sar, sak, b, ldb, C + i * ldc, ldc, nb, acc);
    const T* ai = a + i * sar;
    T* ci = C + i * ldc;
    switch (M - i) {
      case 5: micro_kernel<T, 5>(kb, ai, sar, sak, b, ldb, ci, ldc, nb, acc); break;
      case 4: micro_kernel<T, 4>(kb, ai, sar, sak, b, ldb, ci, ldc, nb, acc); break;
      case 3: micro_kernel<T, 3>(kb, ai, sar, sak, b, ldb, ci, ldc, nb, acc); break;
      case 2: micro_kernel<T, 2>(kb, ai, sar, sak, b, ldb, ci, ldc, nb, acc); break;
      case 1: micro_kernel<T, 1>(kb, ai, sar, sak, b, ldb, ci, ldc, nb, acc); break;
      default: break;
    }
  }
}

// C (M, N) (+)= A^T B for A (R, M) with M small (an input width) and a long inner dimension R (all T*B rows):
// the weight gradient of a narrow input, dW^T = x^T dy. B (R, N) with row stride ldb, in blocks of kKC rows
// x one panel of kNR columns, each copied once into a contiguous buffer (read in place, the rows of a block lie
// ldb apart and, at ldb = 512 floats, all in the same few sets of the L1 cache) and reused by the M / kMR
// blocks of columns of A; the columns of B past the last full panel go through a plain loop.
template <typename T>
inline void gemm_tn_narrow(int64_t R, int64_t M, int64_t N, const T* A, const T* B, int64_t ldb, T* C,
                           bool accumulate) {
  constexpr int64_t NR = kNR<T>;
  const int64_t full = N / NR * NR, panels = N / NR;
  auto work = [&](int64_t p0, int64_t p1) {
    alignas(64) T block[kKC * NR];
    for (int64_t p = p0; p < p1; ++p) {
      for (int64_t k0 = 0; k0 < R; k0 += kKC) {
        const int64_t kb = std::min(kKC, R - k0);
        for (int64_t k = 0; k < kb; ++k) std::memcpy(block + k * NR, B + (k0 + k) * ldb + p * NR, NR * sizeof(T));
        panel_multiply<T>(M, kb, A + k0 * M, 1, M, block, NR, C + p * NR, N, NR, accumulate || k0 > 0);
      }
      if (R == 0 && !accumulate)
        for (int64_t m = 0; m < M; ++m) std::fill(C + m * N + p * NR, C + m * N + (p + 1) * NR, T(0));
    }
  };
  if (2.0 * R * M * N < kParallelFlops || at::get_num_threads() == 1 || panels < 2) {
    work(0, panels);
  } else {
    at::parallel_for(0, panels, 1, work);
  }
  if (full == N) return;
  for (int64_t m = 0; m < M; ++m) {
    T* c = C + m * N;
    if (!accumulate) std::fill(c + full, c + N, T(0));
    for (int64_t r = 0; r < R; ++r) {
      const T a = A[r * M + m];
      const T* b = B + r * ldb;
#pragma omp simd
      for (int64_t j = full; j < N; ++j) c[j] += a * b[j];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The right operand of a GEMM used at every step, packed once per sequence: C (M, N) (+)= A (M, K) B (K, N).
// Routes (RNNLAB_GEMM=micro|brgemm|blas in the environment, read once, overrides the default):
// - "brgemm" (float, where torch's oneDNN provides it; the default there): B in panels of 64 columns through
//   at::native::cpublas::brgemm, oneDNN's batch-reduce micro-kernel (what torch's own nn.LSTM runs on).
//   Measured single-threaded on the AMD EPYC (Zen 4) machines, best of 200 runs, GFLOP/s micro / brgemm / MKL
//   sgemm: (M, K, N) = (50, 32, 128) 87 / 92 / 72; (64, 64, 256) 96 / 107 / 90; (128, 128, 512) 110 / 115 /
//   96; (128, 512, 2048) 99 / 106 / 78. With oneDNN and the micro-kernel held to AVX2 the two trade places
//   (brgemm ahead for K <= 64, the micro-kernel for K >= 256), both ahead of sgemm.
// - "micro" (double, and float without brgemm): B in panels of kNR columns through the micro-kernel above;
// - "blas": no packing, the BLAS gemm on B where it lies.
// Few rows in all (< kPackMinRows) never pack: the copy of B would not pay.
constexpr int64_t kPanel = 64;    // columns of a brgemm panel
constexpr int64_t kRowBlock = 256;  // rows of A per work item, so that a block of A stays in cache across panels
constexpr int64_t kPackMinRows = 64;  // packing B costs a copy of it: worth it when this many rows of A use it

inline bool brgemm_available() {
  static const bool available = [] {
    try {
      float a[2] = {1, 2}, b[2] = {3, 4}, c[1] = {0};
      at::native::cpublas::brgemm(1, 1, 2, 2, 1, 1, false, a, b, c, false);
      return c[0] == 11.0f;
    } catch (...) {
      return false;
    }
  }();
  return available;
}

enum class GemmRoute { kMicro, kBrgemm, kBlas };

inline GemmRoute gemm_route() {
  static const GemmRoute route = [] {
    const char* env = std::getenv("RNNLAB_GEMM");
    const std::string name = env ? env : "";
    if (name == "blas") return GemmRoute::kBlas;
    if (name == "micro") return GemmRoute::kMicro;
    return brgemm_available() ? GemmRoute::kBrgemm : GemmRoute::kMicro;
  }();
  return route;
}

template <typename T> class PackedB {
 public:
  // B[k][n] = src[k * ld + n], or src[n * ld + k] if transposed (B = W^T for a weight W (N, K)); rows: how
  // many rows of A will be multiplied by it in all (a sequence's T*B), to decide whether packing pays
  PackedB(const T* src, int64_t ld, int64_t K, int64_t N, bool transposed, int64_t rows,
          GemmRoute route = gemm_route())
      : src_(src), ld_(ld), K_(K), N_(N), transposed_(transposed) {
    route_ = rows < kPackMinRows ? GemmRoute::kBlas : route;
    if (route_ == GemmRoute::kBrgemm && !std::is_same_v<T, float>) route_ = GemmRoute::kMicro;
    if (route_ == GemmRoute::kBlas) return;
    width_ = route_ == GemmRoute::kMicro ? kNR<T> : kPanel;
    const int64_t panels = (N + width_ - 1) / width_;
    // micro panels are zero-padded to kNR columns; brgemm panels hold nb columns. Packing runs at every call
    // (the weights change between calls): no zero fill but the padding, and a transposed source is read along
    // its rows, a block of kPackK of its columns at a time, so that the block's rows of the panel stay in L1.
    packed_.reset(new T[route_ == GemmRoute::kMicro ? panels * K * width_ : K * N]);
    constexpr int64_t kPackK = 16;
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t j0 = p * width_, nb = std::min(width_, N - j0);
      const int64_t stride = route_ == GemmRoute::kMicro ? width_ : nb;
      T* panel = panel_ptr(p);  // (K, stride)
      if (transposed) {
        for (int64_t k0 = 0; k0 < K; k0 += kPackK) {
          const int64_t kb = std::min(kPackK, K - k0);
          for (int64_t j = 0; j < nb; ++j) {
            const T* s = src + (j0 + j) * ld + k0;
            T* d = panel + k0 * stride + j;
            for (int64_t k = 0; k < kb; ++k) d[k * stride] = s[k];
          }
        }
      } else {
        for (int64_t k = 0; k < K; ++k) std::memcpy(panel + k * stride, src + k * ld + j0, nb * sizeof(T));
      }
      if (stride > nb)
        for (int64_t k = 0; k < K; ++k) std::fill(panel + k * stride + nb, panel + (k + 1) * stride, T(0));
    }
  }

  // C (M, N) = A (M, K) B, or C += A B with accumulate; A and C row-major with row strides lda, ldc;
  // then + bias (N,) on every row if given (added block by block while the block is in cache)
  void multiply(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate,
                const T* bias = nullptr, bool parallel = true) const {
    if (M == 0) return;
    auto add_bias = [&](int64_t i0, int64_t mb, int64_t j0, int64_t nb) {
      for (int64_t i = i0; i < i0 + mb; ++i) {
        T* c = C + i * ldc + j0;
        const T* b = bias + j0;
#pragma omp simd
        for (int64_t j = 0; j < nb; ++j) c[j] += b[j];
      }
    };
    if (route_ == GemmRoute::kBlas) {
      gemm<T>(false, transposed_, M, N_, K_, T(1), A, lda, src_, ld_, accumulate ? T(1) : T(0), C, ldc);
      if (bias) add_bias(0, M, 0, N_);
      return;
    }
    const int64_t panels = (N_ + width_ - 1) / width_, blocks = (M + kRowBlock - 1) / kRowBlock;
    auto work = [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const int64_t i0 = (w / panels) * kRowBlock, p = w % panels, j0 = p * width_;
        const int64_t mb = std::min(kRowBlock, M - i0), nb = std::min(width_, N_ - j0);
        if (route_ == GemmRoute::kMicro) {
          panel_multiply<T>(mb, K_, A + i0 * lda, lda, 1, panel_ptr(p), kNR<T>, C + i0 * ldc + j0, ldc, nb, accumulate);
        } else if constexpr (std::is_same_v<T, float>) {
          at::native::cpublas::brgemm(mb, nb, K_, lda, nb, ldc, accumulate, A + i0 * lda, panel_ptr(p),
                                      C + i0 * ldc + j0, false);
        }
        if (bias) add_bias(i0, mb, j0, nb);
      }
    };
    const int64_t items = panels * blocks;
    if (!parallel || 2.0 * M * N_ * K_ < kParallelFlops || at::get_num_threads() == 1 || items == 1) {
      work(0, items);
    } else {
      at::parallel_for(0, items, 1, work);
    }
  }

  int64_t bytes() const { return K_ * N_ * static_cast<int64_t>(sizeof(T)); }

 private:
  T* panel_ptr(int64_t p) { return packed_.get() + p * width_ * K_; }
  const T* panel_ptr(int64_t p) const { return packed_.get() + p * width_ * K_; }

  const T* src_;
  int64_t ld_, K_, N_;
  bool transposed_;
  GemmRoute route_ = GemmRoute::kBlas;
  int64_t width_ = 0;
  std::unique_ptr<T[]> packed_;
};

// The input projections gx_t (B, D) of the steps. Either given (gx (T, B, D): the layer projected every step
// at once, as training needs, since the backward returns d gx), or computed here a chunk of steps at a time
// from x (T, B, I), W_ih (D, I) and b_ih (D,) (inference: the projections of a few steps stay in cache
// instead of making a round trip through memory).
constexpr int64_t kInputChunkBytes = 256 * 1024;

template <typename T> class StepInput {
 public:
  StepInput(const T* gx, int64_t B, int64_t D) : gx_(gx), B_(B), D_(D) {}
  StepInput(const T* x, int64_t steps, int64_t B, int64_t I, const T* w_ih, const T* b_ih, int64_t D)
      : B_(B), D_(D), x_(x), steps_(steps), I_(I), b_ih_(b_ih) {
    chunk_ = std::clamp<int64_t>(kInputChunkBytes / std::max<int64_t>(1, B * D * sizeof(T)), 1, steps);
    buffer_.resize(chunk_ * B * D);
    w_.emplace(w_ih, I, I, D, true, steps * B);  // W_ih^T (I, D)
  }

  // gx_t (B, D) of step t (steps are asked for in order)
  const T* at(int64_t t) {
    if (gx_) return gx_ + t * B_ * D_;
    if (first_ < 0 || t < first_ || t >= first_ + chunk_) {
      first_ = t;
      const int64_t n = std::min(chunk_, steps_ - t);
      w_->multiply(n * B_, x_ + t * B_ * I_, I_, buffer_.data(), D_, false, b_ih_);
    }
    return buffer_.data() + (t - first_) * B_ * D_;
  }

 private:
  const T* gx_ = nullptr;
  int64_t B_, D_;
  const T* x_ = nullptr;
  int64_t steps_ = 0, I_ = 0, chunk_ = 0, first_ = -1;
  const T* b_ih_ = nullptr;
  std::vector<T> buffer_;
  std::optional<PackedB<T>> w_;
};

// Step inputs of a kernel call: gx = inputs[0] if given, else x, W_ih, b_ih from aux[x_index...].
template <typename T>
StepInput<T> step_input(const std::optional<Tensor>& gx, const OptTensors& aux, size_t x_index) {
  if (gx) return StepInput<T>(gx->data_ptr<T>(), gx->size(1), gx->size(2));
  const Tensor x = *get(aux, x_index), w = *get(aux, x_index + 1);
  const auto b = get(aux, x_index + 2);
  return StepInput<T>(x.data_ptr<T>(), x.size(0), x.size(1), x.size(2), w.data_ptr<T>(), ptr_or_null<T>(b),
                      w.size(0));
}

// (T, B, D) of the step inputs, and a tensor whose options the outputs take
inline std::tuple<int64_t, int64_t, int64_t, Tensor> input_dims(const std::optional<Tensor>& gx,
                                                                 const OptTensors& aux, size_t x_index) {
  if (gx) return {gx->size(0), gx->size(1), gx->size(2), *gx};
  const Tensor x = *get(aux, x_index), w = *get(aux, x_index + 1);
  return {x.size(0), x.size(1), w.size(0), x};
}

// ---------------------------------------------------------------------------------------------------------
// State mixing. Every engine-level rule that lets a unit keep its previous value is one factor k in [0, 1]:
//   s_t = k * s_{t-1} + (1 - k) * s~_t        (s~_t: the cell's new value)
//   backward: ds~_t = (1 - k) ds_t,  ds_{t-1} += k ds_t
// - packed input: k = 1 for every unit of a sequence that has ended (t >= lengths[b]);
// - zoneout: k = mask[t, b, u] in training, k = rate in evaluation (Krueger et al. 2016);
// - clockwork: k = 1 for units whose module is not active at this step (t + clock0[b]) mod period[u] != 0.
// They compose as k = 1 - (1 - k_zoneout) [t < len_b] [active].
template <typename T> struct Keep {
  const int64_t* lengths = nullptr;  // (B,) steps of each sequence, or null
  const T* mask = nullptr;           // (T, B, n) zoneout masks of this state (1 = keep), or null
  T rate = 0;                        // zoneout rate in evaluation (mask null)
  const T* periods = nullptr;        // (n,) clockwork period of each unit, or null
  const T* clock0 = nullptr;         // (B,) clockwork step count at t = 0
  int64_t B = 0, n = 0;

  bool any() const { return lengths || mask || rate != T(0) || periods; }
  bool ended(int64_t t, int64_t b) const { return lengths && t >= lengths[b]; }

  // k (n,) for row b at step t
  void row(int64_t t, int64_t b, T* k) const {
    if (ended(t, b)) {
      std::fill(k, k + n, T(1));
      return;
    }
    if (mask) {
      std::memcpy(k, mask + (t * B + b) * n, n * sizeof(T));
    } else {
      std::fill(k, k + n, rate);
    }
    if (periods) {
      const T clock = clock0[b] + T(t);
      for (int64_t u = 0; u < n; ++u)
        if (std::fmod(clock, periods[u]) != T(0)) k[u] = T(1);
    }
  }
};

template <typename T> Keep<T> make_keep(const std::optional<Tensor>& lengths, const std::optional<Tensor>& mask,
                                        double rate, int64_t B, int64_t n) {
  Keep<T> k;
  k.B = B;
  k.n = n;
  if (lengths && lengths->defined()) k.lengths = lengths->data_ptr<int64_t>();
  if (mask && mask->defined()) {
    k.mask = mask->data_ptr<T>();
  } else {
    k.rate = static_cast<T>(rate);
  }
  return k;
}

// ---------------------------------------------------------------------------------------------------------
// Layer normalisation of one vector x (n,): xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), the
// variance biased, eps = 1e-5 as rnnlab.cells.base.LAYER_NORM_EPS.
constexpr double kLayerNormEps = 1e-5;

template <typename T> inline void ln_stats(const T* x, int64_t n, T& mean, T& rstd) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t u = 0; u < n; ++u) s += x[u];
  mean = s / T(n);
  T v = 0;
  const T m = mean;
#pragma omp simd reduction(+ : v)
  for (int64_t u = 0; u < n; ++u) v += (x[u] - m) * (x[u] - m);
  rstd = T(1) / std::sqrt(v / T(n) + T(kLayerNormEps));
}

// Backward of y = xhat * gain (+ shift): given dy (n,), writes dx (n,) (may alias dy) and adds
// dy * xhat to dgain (n,) (double accumulators) if dgain is not null.
//   dxhat = dy * gain;  dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
template <typename T>
inline void ln_backward(const T* x, int64_t n, T mean, T rstd, const T* gain, const T* dy, T* dx, double* dgain) {
  T s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t u = 0; u < n; ++u) {
    const T xh = (x[u] - mean) * rstd;
    const T dxh = dy[u] * gain[u];
    s1 += dxh;
    s2 += dxh * xh;
  }
  s1 /= T(n);
  s2 /= T(n);
  if (dgain) {
    for (int64_t u = 0; u < n; ++u) dgain[u] += static_cast<double>(dy[u] * ((x[u] - mean) * rstd));
  }
#pragma omp simd
  for (int64_t u = 0; u < n; ++u) {
    const T xh = (x[u] - mean) * rstd;
    dx[u] = rstd * (dy[u] * gain[u] - s1 - xh * s2);
  }
}

// ---------------------------------------------------------------------------------------------------------
// A step of the recurrence on its B rows. Given the previous state the rows are independent, so a thread
// takes a contiguous block of rows and runs the whole step on it (its GEMMs, then its gate math): one parallel
// region per step, none when the step is too small to pay for waking the other threads. Within a thread the
// rows go in sub-blocks of 16 when the step's weights fit in cache (the gates of a sub-block then stay in L1
// between the GEMM and the gate math), else all at once (the weights are streamed once per step); sub_blocks =
// false: all at once always (the LSTM forward: one GEMM call per panel of the step instead of one per panel and
// sub-block measured 5-20% faster at B = 50-128, H = 32-128, one thread, AMD Zen 4).
// f(r0, r1, thread) runs the step on rows [r0, r1). kParallelStepFlops: an LSTM step at (B, H) = (16, 64),
// about 6e5 flops, runs about 1.2x faster over 2 threads (8 rows each) than on one (measured fwd+bwd and
// inference on 2 cores; the 3-gate variants too, at 4.9e5).
constexpr double kParallelStepFlops = 4e5;
constexpr int64_t kSubRows = 16;
constexpr int64_t kCachedWeightBytes = 256 * 1024;

template <typename F>
inline void for_step_rows(int64_t B, double flops_per_row, int64_t weight_bytes, const F& f, bool sub_blocks = true) {
  const int64_t sub = sub_blocks && weight_bytes <= kCachedWeightBytes ? kSubRows : B;
  auto run = [&](int64_t r0, int64_t r1, int thread) {
    for (int64_t s0 = r0; s0 < r1; s0 += sub) f(s0, std::min(r1, s0 + sub), thread);
  };
  const int threads = at::get_num_threads();
  if (threads == 1 || B < 2 || B * flops_per_row < kParallelStepFlops || at::in_parallel_region()) {
    run(0, B, 0);
    return;
  }
  const int64_t blocks = std::min<int64_t>(B, threads);
  at::parallel_for(0, blocks, 1, [&](int64_t i0, int64_t i1) {
    const int thread = at::get_thread_num();
    for (int64_t i = i0; i < i1; ++i) run(i * B / blocks, (i + 1) * B / blocks, thread);
  });
}

// Per-thread scratch rows and per-thread double accumulators of parameter gradients, summed at the end.
struct ThreadBuffers {
  int threads;
  int64_t scratch_size, acc_size;
  std::vector<char> scratch;   // threads x scratch_size bytes
  std::vector<double> acc;     // threads x acc_size

  ThreadBuffers(int64_t scratch_bytes, int64_t accumulators)
      : threads(std::max(1, at::get_num_threads())), scratch_size((scratch_bytes + 63) / 64 * 64),
        acc_size(accumulators), scratch(threads * scratch_size + 64), acc(threads * accumulators, 0.0) {}

  template <typename T> T* rows(int thread) {
    char* base = scratch.data() + thread * scratch_size;
    return reinterpret_cast<T*>(base);
  }
  double* accumulators(int thread) { return acc.data() + thread * acc_size; }

  // sum over threads of accumulators [offset, offset + n) into out (n,)
  template <typename T> void reduce(int64_t offset, int64_t n, T* out) const {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int t = 0; t < threads; ++t) s += acc[t * acc_size + offset + j];
      out[j] = static_cast<T>(s);
    }
  }
};

// Rows of constants (n,) that stand in for an absent gate or parameter, so that the pointwise loops read
// memory unconditionally and vectorise: a gate that is not there reads 1 (or 0), its gradient goes to a sink.
template <typename T> struct ConstRows {
  std::vector<T> ones, zeros;
  explicit ConstRows(int64_t n) : ones(n, T(1)), zeros(n, T(0)) {}
};

}  // namespace rnnlab
