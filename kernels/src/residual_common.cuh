// Shared by residual.cu: the row layout of the fused residual and its tile decomposition.
//
// Must agree with kernels/src/layout.rs (the Rust side computes the same offsets and launches
// with blockDim.x == MSPINN_RESIDUAL_BLOCK; a mismatch leaves outputs unwritten, which the
// NaN-poison self test reports).
#pragma once
#include <stddef.h>

// The operator's per-row functions are for the host too: tests/operator_header.rs compiles this
// header as C++ (with the CUDA qualifiers defined away) and checks it against the Rust operator
// (src/operator.rs), the only other copy.
#define MSPINN_HOST_DEVICE __host__ __device__ __forceinline__

// Threads per block = rows per reduction tile. Fixed, so the reduction order (and hence the
// partial sums, bit for bit) does not depend on the launch's grid size.
#define MSPINN_RESIDUAL_BLOCK 256

// Rows [0, n_pde) are the PDE segment, [n_pde, n) the boundary segment. Tiles never straddle
// the two, so the PDE and boundary losses are sums of disjoint sets of partials.
struct ResidualTiles {
    size_t n;
    size_t n_pde;
    size_t tiles_pde;
    size_t n_tiles;
};

__device__ __forceinline__ ResidualTiles residual_tiles(size_t n, size_t n_pde) {
    const size_t B = MSPINN_RESIDUAL_BLOCK;
    ResidualTiles t;
    t.n = n;
    t.n_pde = n_pde;
    t.tiles_pde = (n_pde + B - 1) / B;
    t.n_tiles = t.tiles_pde + (n - n_pde + B - 1) / B;
    return t;
}

// First row of a tile; its end is min(start + B, segment end).
__device__ __forceinline__ void tile_range(const ResidualTiles &t, size_t tile, size_t *start,
                                           size_t *end) {
    const size_t B = MSPINN_RESIDUAL_BLOCK;
    if (tile < t.tiles_pde) {
        *start = tile * B;
        size_t e = *start + B;
        *end = e < t.n_pde ? e : t.n_pde;
    } else {
        *start = t.n_pde + (tile - t.tiles_pde) * B;
        size_t e = *start + B;
        *end = e < t.n ? e : t.n;
    }
}

__device__ __forceinline__ size_t tile_of_row(const ResidualTiles &t, size_t row) {
    const size_t B = MSPINN_RESIDUAL_BLOCK;
    return row < t.n_pde ? row / B : t.tiles_pde + (row - t.n_pde) / B;
}

// r = c2 u'' + c1 u' + c0 u − g, evaluated left to right exactly like src/operator.rs::residual
// ((c2·u'' + c1·u') + c0·u) − g. The kernels are compiled with -fmad=false so nvcc does not
// contract these into FMAs (which would change the last bit).
template <typename T>
MSPINN_HOST_DEVICE T residual(T u, T du, T d2u, T c0, T c1, T c2, T g) {
    return c2 * d2u + c1 * du + c0 * u - g;
}

// ρ = w r, the derivative of the loss term with respect to r (operator.rs::loss_slope).
template <typename T> MSPINN_HOST_DEVICE T loss_slope(T w, T r) { return w * r; }

// The row's loss term w ½ r² as ½ ρ r (operator.rs::loss_term).
template <typename T> MSPINN_HOST_DEVICE T loss_term(T w, T r) {
    return T(0.5) * loss_slope(w, r) * r;
}

// Row i of the (3, n) jets and (5, n) constants.
template <typename T>
MSPINN_HOST_DEVICE T residual_row(const T *jets, const T *consts, size_t n, size_t i) {
    return residual(jets[i], jets[n + i], jets[2 * n + i], consts[i], consts[n + i],
                    consts[2 * n + i], consts[3 * n + i]);
}
