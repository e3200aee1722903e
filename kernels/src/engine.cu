// The GPU engine's elementwise kernels: grid-stride loops over the per-element functions of
// jets_common.cuh (the same functions the host backend and the tests run on the host). Each
// launch covers every element whatever the grid (crates/model/src/device/plan.rs::grid_stride).
// Streams of n rows and d units are three row-major (n × d) blocks: element k = i·d + j.
#include "residual_common.cuh"
#include "jets_common.cuh"

#define GRID_STRIDE(k, len)                                                                       \
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < (len);                    \
         k += (size_t)blockDim.x * gridDim.x)

template <typename T>
__device__ void input_jets(const T *x, const T *w, const T *b, size_t n, size_t d, T *a, T *s) {
    const size_t m = n * d;
    GRID_STRIDE(k, m) {
        const size_t i = k / d, j = k % d;
        jet_tanh_fwd_input(x[i], w[j], b[j], &a[k], &a[m + k], &a[2 * m + k], &s[k], &s[m + k]);
    }
}

template <typename T>
__device__ void bias_jets(T *z, const T *b, size_t n, size_t d, T *a, T *s) {
    const size_t m = n * d;
    GRID_STRIDE(k, m) {
        z[k] = z[k] + b[k % d];
        jet_tanh_fwd(z[k], z[m + k], z[2 * m + k], &a[k], &a[m + k], &a[2 * m + k], &s[k],
                     &s[m + k]);
    }
}

template <typename T> __device__ void add_bias(T *u, const T *b, size_t n) {
    GRID_STRIDE(k, n) { u[k] = u[k] + b[0]; }
}

template <typename T>
__device__ void hidden_adjoints(T *bar, const T *a, const T *s, const T *z, size_t n, size_t d) {
    const size_t m = n * d;
    GRID_STRIDE(k, m) {
        T zb0, zb1, zb2;
        jet_tanh_bwd(bar[k], bar[m + k], bar[2 * m + k], a[k], s[k], s[m + k], z[m + k],
                     z[2 * m + k], &zb0, &zb1, &zb2);
        bar[k] = zb0;
        bar[m + k] = zb1;
        bar[2 * m + k] = zb2;
    }
}

template <typename T>
__device__ void input_adjoints(const T *bar, const T *a, const T *s, const T *w, const T *x,
                               size_t n, size_t d, T *zb, T *ew) {
    const size_t m = n * d;
    GRID_STRIDE(k, m) {
        const size_t i = k / d, j = k % d;
        input_grad_terms(bar[k], bar[m + k], bar[2 * m + k], a[k], s[k], s[m + k], w[j], x[i],
                         &zb[k], &ew[k]);
    }
}

template <typename T> __device__ void fill(T *out, size_t len, T value) {
    GRID_STRIDE(k, len) { out[k] = value; }
}

template <typename T>
__device__ void adam(T *theta, T *m, T *v, const T *g, size_t len, T b1, T b2, T ob1, T ob2,
                     T scale_m, T scale_v, T lr, T eps) {
    const AdamConsts<T> c = {b1, b2, ob1, ob2, scale_m, scale_v, lr, eps};
    GRID_STRIDE(k, len) { adam_update(c, g[k], &theta[k], &m[k], &v[k]); }
}

// Row i's Jacobian entries of a hidden layer's weights: J[i, col + o·din + p] = Σ_c z̄_c[i, o] h_c[i, p]
// (flat order W[o][p], row-major J with leading dimension ldj).
template <typename T>
__device__ void jacobian_weights(const T *h, const T *bar, size_t n, size_t din, size_t dout, T *jac,
                                 size_t ldj, size_t col) {
    const size_t mh = n * din, mb = n * dout, per_row = din * dout;
    GRID_STRIDE(k, n * per_row) {
        const size_t i = k / per_row, r = k % per_row, o = r / din, p = r % din;
        const size_t b = i * dout + o, a = i * din + p;
        jac[i * ldj + col + r] =
            jacobian_weight(bar[b], bar[mb + b], bar[2 * mb + b], h[a], h[mh + a], h[2 * mh + a]);
    }
}

// J[i, col + j] = src[i·d + j]: per-row terms (biases, layer 0) into their Jacobian columns.
template <typename T>
__device__ void scatter_rows(const T *src, size_t n, size_t d, T *jac, size_t ldj, size_t col) {
    GRID_STRIDE(k, n * d) { jac[(k / d) * ldj + col + k % d] = src[k]; }
}

// r_i of every row, unweighted (residual_common.cuh: the operator written once).
template <typename T> __device__ void residuals(const T *jets, const T *consts, size_t n, T *out) {
    GRID_STRIDE(i, n) { out[i] = residual_row(jets, consts, n, i); }
}

#define ENGINE_OPS(T, S)                                                                          \
    extern "C" __global__ void mspinn_input_jets_##S(const T *x, const T *w, const T *b,         \
                                                     size_t n, size_t d, T *a, T *s) {           \
        input_jets<T>(x, w, b, n, d, a, s);                                                       \
    }                                                                                             \
    extern "C" __global__ void mspinn_bias_jets_##S(T *z, const T *b, size_t n, size_t d, T *a,  \
                                                    T *s) {                                       \
        bias_jets<T>(z, b, n, d, a, s);                                                           \
    }                                                                                             \
    extern "C" __global__ void mspinn_add_bias_##S(T *u, const T *b, size_t n) {                 \
        add_bias<T>(u, b, n);                                                                     \
    }                                                                                             \
    extern "C" __global__ void mspinn_hidden_adjoints_##S(T *bar, const T *a, const T *s,        \
                                                          const T *z, size_t n, size_t d) {      \
        hidden_adjoints<T>(bar, a, s, z, n, d);                                                   \
    }                                                                                             \
    extern "C" __global__ void mspinn_input_adjoints_##S(const T *bar, const T *a, const T *s,   \
                                                         const T *w, const T *x, size_t n,       \
                                                         size_t d, T *zb, T *ew) {               \
        input_adjoints<T>(bar, a, s, w, x, n, d, zb, ew);                                         \
    }                                                                                             \
    extern "C" __global__ void mspinn_fill_##S(T *out, size_t len, T value) {                    \
        fill<T>(out, len, value);                                                                 \
    }                                                                                             \
    extern "C" __global__ void mspinn_adam_##S(T *theta, T *m, T *v, const T *g, size_t len,     \
                                               T b1, T b2, T ob1, T ob2, T scale_m, T scale_v,   \
                                               T lr, T eps) {                                     \
        adam<T>(theta, m, v, g, len, b1, b2, ob1, ob2, scale_m, scale_v, lr, eps);               \
    }                                                                                             \
    extern "C" __global__ void mspinn_jacobian_weights_##S(const T *h, const T *bar, size_t n,   \
                                                           size_t din, size_t dout, T *jac,       \
                                                           size_t ldj, size_t col) {              \
        jacobian_weights<T>(h, bar, n, din, dout, jac, ldj, col);                                 \
    }                                                                                             \
    extern "C" __global__ void mspinn_scatter_rows_##S(const T *src, size_t n, size_t d, T *jac, \
                                                       size_t ldj, size_t col) {                  \
        scatter_rows<T>(src, n, d, jac, ldj, col);                                                \
    }                                                                                             \
    extern "C" __global__ void mspinn_residuals_##S(const T *jets, const T *consts, size_t n,    \
                                                    T *out) {                                     \
        residuals<T>(jets, consts, n, out);                                                       \
    }

ENGINE_OPS(float, f32)
ENGINE_OPS(double, f64)
