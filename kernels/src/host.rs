//! The fused residual op's arithmetic on the host: the same rows, the same per-tile pairwise
//! sums, the same order as the CUDA kernel (compiled with `-fmad=false`), so the CPU op
//! reproduces it bit for bit. The per-row formulas are [`crate::operator`]'s.

use crate::layout::{Outputs, Tiles, BLOCK};
use crate::operator::{loss_slope, loss_term, residual};
use crate::Real;

/// Row i's residual from the (3, N) jets and (5, N) constants.
#[inline(always)]
fn residual_row<T: Real>(jets: &[T], consts: &[T], n: usize, i: usize) -> T {
    residual(
        jets[i],
        jets[n + i],
        jets[2 * n + i],
        consts[i],
        consts[n + i],
        consts[2 * n + i],
        consts[3 * n + i],
    )
}

/// Sums `buf` by the fixed pairwise tree of the CUDA kernel: slot t += slot t + s for
/// s = BLOCK/2, …, 1. Same additions, same order, so the same bits.
fn tree_sum<T: Real>(buf: &mut [T; BLOCK]) -> T {
    let mut s = BLOCK / 2;
    while s > 0 {
        for t in 0..s {
            buf[t] += buf[t + s];
        }
        s /= 2;
    }
    buf[0]
}

/// The forward on the host: fills `out` (laid out by [`Tiles::output_offsets`]).
pub fn forward<T: Real>(jets: &[T], consts: &[T], tiles: Tiles, outputs: Outputs, out: &mut [T]) {
    let n = tiles.n;
    let off = tiles.output_offsets(outputs);
    debug_assert_eq!(out.len(), off.len);
    let mut buf = [T::ZERO; BLOCK];
    for tile in 0..tiles.n_tiles {
        let (start, end) = tiles.range(tile);
        for (t, slot) in buf.iter_mut().enumerate() {
            let row = start + t;
            *slot = if row < end {
                let r = residual_row(jets, consts, n, row);
                let e = loss_term(consts[4 * n + row], r);
                if let Some(o) = off.residual {
                    out[o + row] = r;
                }
                if let Some(o) = off.half_squares {
                    out[o + row] = e;
                }
                e
            } else {
                T::ZERO
            };
        }
        out[off.partials + tile] = tree_sum(&mut buf);
    }
}

/// The backward on the host: `grad` is laid out like the forward's output, `dj` is (3, N).
/// dL/dr_i = g_r_i + w_i r_i (g_e_i + g_p[tile(i)]), dL/du^(k)_i = c_k,i dL/dr_i.
pub fn backward<T: Real>(
    jets: &[T],
    consts: &[T],
    grad: &[T],
    tiles: Tiles,
    outputs: Outputs,
    dj: &mut [T],
) {
    let n = tiles.n;
    let off = tiles.output_offsets(outputs);
    debug_assert_eq!(grad.len(), off.len);
    debug_assert_eq!(dj.len(), 3 * n);
    for i in 0..n {
        let r = residual_row(jets, consts, n, i);
        let w = consts[4 * n + i];
        let mut ge = grad[off.partials + tiles.tile_of(i)];
        if let Some(o) = off.half_squares {
            ge = grad[o + i] + ge;
        }
        let mut s = loss_slope(w, r) * ge;
        if let Some(o) = off.residual {
            s = grad[o + i] + s;
        }
        dj[i] = consts[i] * s;
        dj[n + i] = consts[n + i] * s;
        dj[2 * n + i] = consts[2 * n + i] * s;
    }
}
