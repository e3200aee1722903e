//! One batch tile of the network on x ∈ ℝ^d (d = dims[0] > 1) through forward, residual and
//! reverse: the 1-D tile ([`super::tile`]) with 1 + 2d streams instead of three.
//!
//! Streams of a layer (each n rows of the (1 + 2d)n × width matrix): 0 the value, 1 + k the
//! first derivative ∂ₖ, 1 + d + k the pure second derivative ∂ₖₖ (k < d). Mixed derivatives are
//! never formed: −∇·(a∇u) with scalar a needs only u, ∇u and diag ∇²u, so the cost grows as
//! 1 + 2d rather than 1 + d + d(d+1)/2. Per direction the forward and backward formulas are
//! the 1-D ones with z' → z'ₖ, z'' → z''ₖ; the value adjoint sums the directions:
//!
//! ```text
//! z̄    = ā s1 + Σₖ [ā'ₖ s2 z'ₖ + ā''ₖ (s3 z'ₖ² + s2 z''ₖ)]
//! z̄'ₖ  = ā'ₖ s1 + 2 ā''ₖ s2 z'ₖ          z̄''ₖ = ā''ₖ s1
//! ```
//!
//! Layer 0 reads (x, eₖ, 0): z = W₀x + b, z'ₖ = W₀[:, k], z''ₖ = 0, so
//! ∂L/∂W₀[j, k] += Σᵢ (z̄ᵢⱼ xᵢₖ + z̄'ₖ,ᵢⱼ). The residual is r = c0 u + Σₖ (c1ₖ ∂ₖu + c2ₖ ∂ₖₖu) − g
//! with the output adjoints (c0, c1ₖ, c2ₖ)·ρ. This is a separate routine, not the 1-D one with
//! d = 1, so the 1-D engine's arithmetic (and its results, bit for bit) is untouched.

use candle_core::WithDType;
use faer::{Accum, MatMut, MatRef};
use mspinn_kernels::operator::{loss_slope, loss_term};

use super::{gemm, Act, NetRef, Rows, TileWs};
use crate::Real;

/// Rows r0..r0+n of a d-dimensional set; arguments and outputs as [`super::tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile_nd<T: Real, A: Act, const FMA: bool, const JAC: bool>(
    net: &NetRef<'_, T>,
    rows: &Rows<'_, T>,
    r0: usize,
    n: usize,
    ws: &mut TileWs<T>,
    grad: bool,
    jac: &mut [T],
    res: &mut [T],
) {
    let np = if JAC { jac.len() / n.max(1) } else { 0 };
    let dims = net.dims;
    let d = dims[0];
    let st = 1 + 2 * d;
    let nl = dims.len() - 1;
    let TileWs {
        z,
        a,
        s,
        bar,
        grad: gr,
        pde,
        bc,
        ..
    } = ws;

    // Layer 0: z = b + Σₖ xₖ W₀[:, k], a = σ(z), a'ₖ = σ' W₀[:, k], a''ₖ = σ'' W₀[:, k]².
    {
        let m0 = dims[1];
        let m = n * m0;
        let w0 = &net.w[0][..m0 * d];
        let b0 = &net.b[0][..m0];
        let al = &mut a[0][..st * m];
        let (s1b, s2b) = s[0][..2 * m].split_at_mut(m);
        for i in 0..n {
            let xi = &rows.x[(r0 + i) * d..(r0 + i + 1) * d];
            for j in 0..m0 {
                let mut acc = b0[j];
                for k in 0..d {
                    acc = T::fma::<FMA>(xi[k], w0[j * d + k], acc);
                }
                al[i * m0 + j] = acc;
            }
        }
        for idx in 0..m {
            let (t, s1, s2) = A::fwd::<T, FMA>(al[idx]);
            al[idx] = t;
            s1b[idx] = s1;
            s2b[idx] = s2;
        }
        for k in 0..d {
            for i in 0..n {
                for j in 0..m0 {
                    let idx = i * m0 + j;
                    let w = w0[j * d + k];
                    al[(1 + k) * m + idx] = s1b[idx] * w;
                    al[(1 + d + k) * m + idx] = s2b[idx] * w * w;
                }
            }
        }
    }

    // Affine layers 1..nl, one gemm over all streams; activation jets on all but the last.
    for l in 1..nl {
        let (din, dout) = (dims[l], dims[l + 1]);
        let h = &a[l - 1][..st * n * din];
        let zl = &mut z[l][..st * n * dout];
        gemm(
            MatMut::from_row_major_slice_mut(zl, st * n, dout),
            Accum::Replace,
            MatRef::from_row_major_slice(h, st * n, din),
            MatRef::from_row_major_slice(&net.w[l][..dout * din], dout, din).transpose(),
        );
        if l == nl - 1 {
            break;
        }
        let b = &net.b[l][..dout];
        let m = n * dout;
        for row in zl[..m].chunks_exact_mut(dout) {
            for (v, &bj) in row.iter_mut().zip(b) {
                *v += bj;
            }
        }
        let zl = &*zl;
        let al = &mut a[l][..st * m];
        let (s1b, s2b) = s[l][..2 * m].split_at_mut(m);
        for idx in 0..m {
            let (t, s1, s2) = A::fwd::<T, FMA>(zl[idx]);
            al[idx] = t;
            s1b[idx] = s1;
            s2b[idx] = s2;
        }
        for k in 0..d {
            let z1 = &zl[(1 + k) * m..(2 + k) * m];
            let z2 = &zl[(1 + d + k) * m..(2 + d + k) * m];
            let (lo, hi) = al.split_at_mut((1 + d + k) * m);
            let a1 = &mut lo[(1 + k) * m..(2 + k) * m];
            let a2 = &mut hi[..m];
            for idx in 0..m {
                let (s1, s2, d1) = (s1b[idx], s2b[idx], z1[idx]);
                a1[idx] = s1 * d1;
                a2[idx] = T::fma::<FMA>(s2 * d1, d1, s1 * z2[idx]);
            }
        }
    }

    // Residual, loss and the output adjoints (bar[0] as a (1 + 2d)n × 1 matrix).
    let zo = &z[nl - 1][..st * n];
    let bl = net.b[nl - 1][0];
    let ub = &mut bar[0][..st * n];
    let (mut lp, mut lb) = (0.0f64, 0.0f64);
    for i in 0..n {
        let gi = r0 + i;
        let u = zo[i] + bl;
        let cg = &rows.c1[gi * d..(gi + 1) * d];
        let ch = &rows.c2[gi * d..(gi + 1) * d];
        let mut r = rows.c0[gi] * u;
        for k in 0..d {
            r = r + cg[k] * zo[(1 + k) * n + i] + ch[k] * zo[(1 + d + k) * n + i];
        }
        let r = r - rows.g[gi];
        if !res.is_empty() {
            res[i] = r;
        }
        let rho = loss_slope(rows.w[gi], r);
        let e = WithDType::to_f64(loss_term(rows.w[gi], r));
        if gi < rows.n_pde {
            lp += e;
        } else {
            lb += e;
        }
        let seed = if JAC { T::ONE } else { rho };
        ub[i] = seed * rows.c0[gi];
        for k in 0..d {
            ub[(1 + k) * n + i] = seed * cg[k];
            ub[(1 + d + k) * n + i] = seed * ch[k];
        }
    }
    *pde += lp;
    *bc += lb;
    if !grad {
        return;
    }

    // Reverse sweep: bar[cur] holds Z̄ of layer l (after the activation step for hidden l).
    let mut cur = 0;
    for l in (1..nl).rev() {
        let (din, dout) = (dims[l], dims[l + 1]);
        let (ow, ob) = net.offsets[l];
        let [bar0, bar1] = &mut *bar;
        let (zb, next) = if cur == 0 { (bar0, bar1) } else { (bar1, bar0) };
        let zb = &mut zb[..st * n * dout];
        let gb = &mut gr[ob..ob + dout];
        if l < nl - 1 {
            let m = n * dout;
            let zl = &z[l][..st * m];
            let t = &a[l][..m];
            let (s1b, s2b) = s[l][..2 * m].split_at(m);
            let (b0, rest) = zb.split_at_mut(m);
            for idx in 0..m {
                b0[idx] *= s1b[idx];
            }
            for k in 0..d {
                let z1 = &zl[(1 + k) * m..(2 + k) * m];
                let z2 = &zl[(1 + d + k) * m..(2 + d + k) * m];
                let (lo, hi) = rest.split_at_mut(d * m);
                let b1 = &mut lo[k * m..(k + 1) * m];
                let b2 = &mut hi[k * m..(k + 1) * m];
                for idx in 0..m {
                    let (s1, s2, d1) = (s1b[idx], s2b[idx], z1[idx]);
                    let s3 = A::s3::<T, FMA>(t[idx], s1, s2);
                    let (ab1, ab2) = (b1[idx], b2[idx]);
                    b0[idx] =
                        b0[idx] + ab1 * s2 * d1 + ab2 * T::fma::<FMA>(s3 * d1, d1, s2 * z2[idx]);
                    b1[idx] = ab1 * s1 + T::of(2.0) * ab2 * s2 * d1;
                    b2[idx] = ab2 * s1;
                }
            }
            for (i, row) in zb[..m].chunks_exact(dout).enumerate() {
                if JAC {
                    jac[i * np + ob..i * np + ob + dout].copy_from_slice(row);
                } else {
                    for (g, &v) in gb.iter_mut().zip(row) {
                        *g += v;
                    }
                }
            }
        } else if JAC {
            for i in 0..n {
                jac[i * np + ob] = zb[i];
            }
        } else {
            gb[0] += zb[..n].iter().fold(T::ZERO, |acc, &v| acc + v);
        }
        let h = &a[l - 1][..st * n * din];
        if JAC {
            // Row i of the weight block: Σ_s z̄^s_i ⊗ h^s_i over the 1 + 2d streams.
            let (sz, sh) = (n * dout, n * din);
            for i in 0..n {
                let row = &mut jac[i * np + ow..i * np + ow + dout * din];
                for o in 0..dout {
                    let out = &mut row[o * din..(o + 1) * din];
                    let g0 = zb[i * dout + o];
                    let h0 = &h[i * din..(i + 1) * din];
                    for c in 0..din {
                        out[c] = g0 * h0[c];
                    }
                    for sidx in 1..st {
                        let g = zb[sidx * sz + i * dout + o];
                        let hs = &h[sidx * sh + i * din..sidx * sh + (i + 1) * din];
                        for c in 0..din {
                            out[c] = T::fma::<FMA>(g, hs[c], out[c]);
                        }
                    }
                }
            }
        } else {
            gemm(
                MatMut::from_row_major_slice_mut(&mut gr[ow..ow + dout * din], dout, din),
                Accum::Add,
                MatRef::from_row_major_slice(&*zb, st * n, dout).transpose(),
                MatRef::from_row_major_slice(h, st * n, din),
            );
        }
        gemm(
            MatMut::from_row_major_slice_mut(&mut next[..st * n * din], st * n, din),
            Accum::Replace,
            MatRef::from_row_major_slice(&*zb, st * n, dout),
            MatRef::from_row_major_slice(&net.w[l][..dout * din], dout, din),
        );
        cur = 1 - cur;
    }

    // Layer 0: ā → z̄ with z'ₖ = W₀[:, k], z''ₖ = 0, then ∂L/∂W₀, ∂L/∂b₀ (or J's columns).
    let m0 = dims[1];
    let m = n * m0;
    let (ow, ob) = net.offsets[0];
    let w0 = &net.w[0][..m0 * d];
    let ab = &mut bar[cur][..st * m];
    let t = &a[0][..m];
    let (s1b, s2b) = s[0][..2 * m].split_at(m);
    {
        let (b0, rest) = ab.split_at_mut(m);
        for idx in 0..m {
            b0[idx] *= s1b[idx];
        }
        for k in 0..d {
            let (lo, hi) = rest.split_at_mut(d * m);
            let b1 = &mut lo[k * m..(k + 1) * m];
            let b2 = &hi[k * m..(k + 1) * m];
            for i in 0..n {
                for j in 0..m0 {
                    let idx = i * m0 + j;
                    let w = w0[j * d + k];
                    let (s1, s2) = (s1b[idx], s2b[idx]);
                    let s3 = A::s3::<T, FMA>(t[idx], s1, s2);
                    let (ab1, ab2) = (b1[idx], b2[idx]);
                    b0[idx] = b0[idx] + ab1 * s2 * w + ab2 * s3 * w * w;
                    b1[idx] = ab1 * s1 + T::of(2.0) * ab2 * s2 * w;
                }
            }
        }
    }
    let ab = &*ab;
    let (gw, gb) = {
        let (lo, hi) = gr.split_at_mut(ob);
        (&mut lo[ow..ow + m0 * d], &mut hi[..m0])
    };
    for i in 0..n {
        let xi = &rows.x[(r0 + i) * d..(r0 + i + 1) * d];
        for j in 0..m0 {
            let idx = i * m0 + j;
            let z0b = ab[idx];
            if JAC {
                let row = &mut jac[i * np..(i + 1) * np];
                for k in 0..d {
                    row[ow + j * d + k] = T::fma::<FMA>(z0b, xi[k], ab[(1 + k) * m + idx]);
                }
                row[ob + j] = z0b;
            } else {
                for k in 0..d {
                    gw[j * d + k] += T::fma::<FMA>(z0b, xi[k], ab[(1 + k) * m + idx]);
                }
                gb[j] += z0b;
            }
        }
    }
}
