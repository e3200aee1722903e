// The fused residual r_i = c2_i u''_i + c1_i u'_i + c0_i u_i − g_i, its weighted half squares
// e_i = w_i ½ r_i² and per-tile partial sums of e, in one pass; and the matching backward.
//
// Layouts (struct of arrays, so every load is coalesced):
//   jets   (3, n): u, u', u''
//   consts (5, n): c0, c1, c2, g, w
//   out    [r (n) if write_r][e (n) if write_e][partials (n_tiles)]
//   grad   same layout as out (the incoming gradient); dj (3, n) the gradient wrt the jets.
//
// Bounds: every loop is grid-stride over tiles (forward) or rows (backward) and every index is
// checked against n / the tile end, so any grid size ≥ 1 writes every output element.
// The forward must be launched with blockDim.x == MSPINN_RESIDUAL_BLOCK.
#include "residual_common.cuh"

template <typename T>
__device__ void residual_fwd(const T *jets, const T *consts, T *out, size_t n, size_t n_pde,
                             int write_r, int write_e) {
    __shared__ T sh[MSPINN_RESIDUAL_BLOCK];
    const ResidualTiles tiles = residual_tiles(n, n_pde);
    T *out_r = out;
    T *out_e = out + (write_r ? n : 0);
    T *partials = out_e + (write_e ? n : 0);
    const unsigned t = threadIdx.x;
    for (size_t tile = blockIdx.x; tile < tiles.n_tiles; tile += gridDim.x) {
        size_t start, end;
        tile_range(tiles, tile, &start, &end);
        const size_t row = start + t;
        T e = T(0);
        if (row < end) {
            const T r = residual_row(jets, consts, n, row);
            const T w = consts[4 * n + row];
            e = loss_term(w, r);
            if (write_r) out_r[row] = r;
            if (write_e) out_e[row] = e;
        }
        sh[t] = e;
        __syncthreads();
        // Fixed pairwise tree: slot t accumulates slot t + s for s = B/2, B/4, …, 1. The CPU op
        // (layout.rs::tree_sum) performs the same additions in the same order.
        for (unsigned s = MSPINN_RESIDUAL_BLOCK / 2; s > 0; s >>= 1) {
            if (t < s) sh[t] = sh[t] + sh[t + s];
            __syncthreads();
        }
        if (t == 0) partials[tile] = sh[0];
        // sh is reused by the next tile of this block.
        __syncthreads();
    }
}

// dL/dr_i = g_r_i + w_i r_i (g_e_i + g_p[tile(i)]);  dL/du = c0 dL/dr, dL/du' = c1 dL/dr,
// dL/du'' = c2 dL/dr. r is recomputed instead of stored, so the forward can write only the
// partials during training.
template <typename T>
__device__ void residual_bwd(const T *jets, const T *consts, const T *grad, T *dj, size_t n,
                             size_t n_pde, int write_r, int write_e) {
    const ResidualTiles tiles = residual_tiles(n, n_pde);
    const T *grad_r = grad;
    const T *grad_e = grad + (write_r ? n : 0);
    const T *grad_p = grad_e + (write_e ? n : 0);
    const size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const T r = residual_row(jets, consts, n, i);
        const T w = consts[4 * n + i];
        T ge = grad_p[tile_of_row(tiles, i)];
        if (write_e) ge = grad_e[i] + ge;
        T s = loss_slope(w, r) * ge;
        if (write_r) s = grad_r[i] + s;
        dj[i] = consts[i] * s;
        dj[n + i] = consts[n + i] * s;
        dj[2 * n + i] = consts[2 * n + i] * s;
    }
}

#define RESIDUAL_OPS(T, SUFFIX)                                                                   \
    extern "C" __global__ void mspinn_residual_fwd_##SUFFIX(const T *jets, const T *consts,      \
                                                            T *out, size_t n, size_t n_pde,      \
                                                            int write_r, int write_e) {          \
        residual_fwd<T>(jets, consts, out, n, n_pde, write_r, write_e);                          \
    }                                                                                             \
    extern "C" __global__ void mspinn_residual_bwd_##SUFFIX(const T *jets, const T *consts,      \
                                                            const T *grad, T *dj, size_t n,      \
                                                            size_t n_pde, int write_r,           \
                                                            int write_e) {                       \
        residual_bwd<T>(jets, consts, grad, dj, n, n_pde, write_r, write_e);                     \
    }

RESIDUAL_OPS(float, f32)
RESIDUAL_OPS(double, f64)
