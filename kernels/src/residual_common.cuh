// Shared by residual.cu: the row layout of the fused residual and its tile decomposition.
//
// Must agree with kernels/src/layout.rs (the Rust side computes the same offsets and launches
// with blockDim.x == MSPINN_RESIDUAL_BLOCK; a mismatch leaves outputs unwritten, which the
// NaN-poison self test reports).
#pragma once
#include <stddef.h>

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

// r = c2 u'' + c1 u' + c0 u − g, evaluated left to right exactly like the CPU op and the
// unfused candle expression ((c2·u'' + c1·u') + c0·u) − g. The file is compiled with
// -fmad=false so nvcc does not contract these into FMAs (which would change the last bit).
template <typename T>
__device__ __forceinline__ T residual_row(const T *jets, const T *consts, size_t n, size_t i) {
    const T u = jets[i], du = jets[n + i], d2u = jets[2 * n + i];
    const T c0 = consts[i], c1 = consts[n + i], c2 = consts[2 * n + i], g = consts[3 * n + i];
    return c2 * d2u + c1 * du + c0 * u - g;
}
