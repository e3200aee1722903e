//! One batch tile through the jet network and back: the forward streams, the residual, the loss
//! and the reverse sweep, accumulating ∂L/∂θ into a per-thread buffer.
//!
//! Layout: a layer's three streams (value, d/dx, d²/dx²) of a tile of n rows are one row-major
//! (3n × width) matrix, stream s in rows [s n, (s+1) n), so each affine layer is one gemm.
//!
//! Forward, hidden layer l with input streams H = (h, h', h''), weight W (out × in), bias b:
//!
//! ```text
//! Z = H W^T (+ b on the value rows)       a = σ(z),  a' = σ'(z) z',  a'' = σ''(z) z'² + σ'(z) z''
//! ```
//!
//! layer 0 computed directly from (x, 1, 0): z = x w + b, z' = w, z'' = 0. The output layer is
//! linear, u = Z₀ + b_L, u' = Z₁, u'' = Z₂, and per row r = c2 u'' + c1 u' + c0 u − g,
//! e = ½ w r², split into the PDE and boundary sums by the row index.
//!
//! Backward (ā is ∂L/∂a of a stream, s_k = σ^(k)(z)): with ρ = w r the output adjoints are
//! ū = ρ c0, ū' = ρ c1, ū'' = ρ c2. Through the activation (differentiate the forward formulas):
//!
//! ```text
//! z̄  = ā s1 + ā' s2 z' + ā'' (s3 z'² + s2 z'')
//! z̄' = ā' s1 + 2 ā'' s2 z'
//! z̄'' = ā'' s1
//! ```
//!
//! and through the affine map (streams stacked, so each is one gemm over 3n rows):
//!
//! ```text
//! ∂L/∂W += Z̄^T H      ∂L/∂b += Σ_rows z̄ (value rows only)      H̄ = Z̄ W
//! ```
//!
//! Layer 0's input streams are (x, 1, 0): ∂L/∂w += Σ_rows (z̄ x + z̄'), ∂L/∂b += Σ_rows z̄.
//!
//! Jacobian mode (`JAC`): the same sweep seeded with ū = c0, ū' = c1, ū'' = c2 (the adjoints of
//! r itself rather than of ½ w r²) gives each row's ∂r_i/∂θ, written to that row of J instead of
//! being summed: a weight block's row is the rank-3 outer product Σ_s z̄^s_i ⊗ h^s_i, the bias
//! row z̄_i. The back-propagation gemms H̄ = Z̄ W are unchanged; the per-row outer products cost
//! 3 N_p multiply-adds per row, and writing J (N × N_p values) is the floor of this mode.
//! For tanh s3 = s1 (4t² − 2 s1), for sin s3 = −s1, for softplus s3 = s2 (1 − 2 s1).

use faer::{Accum, MatMut, MatRef, Par};

use candle_core::WithDType;

use crate::Real;
use mspinn_kernels::operator::{loss_slope, loss_term, residual};

pub(crate) mod nd;

/// σ, σ', σ'' of a pre-activation, and σ''' from those.
pub(crate) trait Act {
    fn fwd<T: Real, const FMA: bool>(z: T) -> (T, T, T);
    fn s3<T: Real, const FMA: bool>(s0: T, s1: T, s2: T) -> T;
}

pub(crate) struct Tanh;
pub(crate) struct Sin;
pub(crate) struct Softplus;

impl Act for Tanh {
    #[inline(always)]
    fn fwd<T: Real, const FMA: bool>(z: T) -> (T, T, T) {
        let t = z.tanh_v::<FMA>();
        let s1 = T::fma::<FMA>(-t, t, T::ONE);
        let s2 = T::of(-2.0) * t * s1;
        (t, s1, s2)
    }
    #[inline(always)]
    fn s3<T: Real, const FMA: bool>(t: T, s1: T, _s2: T) -> T {
        s1 * (T::of(4.0) * t * t - T::of(2.0) * s1)
    }
}

impl Act for Sin {
    #[inline(always)]
    fn fwd<T: Real, const FMA: bool>(z: T) -> (T, T, T) {
        let s0 = z.sin();
        (s0, z.cos(), -s0)
    }
    #[inline(always)]
    fn s3<T: Real, const FMA: bool>(_s0: T, s1: T, _s2: T) -> T {
        -s1
    }
}

impl Act for Softplus {
    #[inline(always)]
    fn fwd<T: Real, const FMA: bool>(z: T) -> (T, T, T) {
        let s = z.logistic();
        (z.softplus(), s, s * (T::ONE - s))
    }
    #[inline(always)]
    fn s3<T: Real, const FMA: bool>(_s0: T, s1: T, s2: T) -> T {
        s2 * (T::ONE - T::of(2.0) * s1)
    }
}

/// A hidden layer's activation jets (a, a', a'') and σ', σ'' from its pre-activation streams
/// (z with its bias, z', z''). One element of the flat loops below; the GPU header's
/// `jet_tanh_fwd` is the same formula (tests/device_math.rs holds them together).
#[inline(always)]
pub(crate) fn jet_fwd<T: Real, A: Act, const FMA: bool>(z0: T, d1: T, d2: T) -> (T, T, T, T, T) {
    let (t, s1, s2) = A::fwd::<T, FMA>(z0);
    (t, s1 * d1, T::fma::<FMA>(s2 * d1, d1, s1 * d2), s1, s2)
}

/// A hidden layer's pre-activation adjoints (z̄, z̄', z̄'') from its activation adjoints `ab`,
/// the forward's (σ, σ', σ'') and its z', z'' (the GPU header's `jet_tanh_bwd`).
#[inline(always)]
pub(crate) fn jet_bwd<T: Real, A: Act, const FMA: bool>(
    (ab0, ab1, ab2): (T, T, T),
    (t, s1, s2): (T, T, T),
    d1: T,
    d2: T,
) -> (T, T, T) {
    let s3 = A::s3::<T, FMA>(t, s1, s2);
    (
        ab0 * s1 + ab1 * s2 * d1 + ab2 * T::fma::<FMA>(s3 * d1, d1, s2 * d2),
        ab1 * s1 + T::of(2.0) * ab2 * s2 * d1,
        ab2 * s1,
    )
}

/// The network's parameters as borrowed slices, weights row-major (out × in).
pub(crate) struct NetRef<'a, T> {
    pub dims: &'a [usize],
    pub w: &'a [&'a [T]],
    pub b: &'a [&'a [T]],
    /// Offsets of W_l and b_l in the flat gradient.
    pub offsets: &'a [(usize, usize)],
}

/// The residual rows: r = c2 u'' + c1 u' + c0 u − g, loss weight w, PDE rows first.
///
/// For a network on ℝ^d (d = the engine's input width, > 1) `x`, `c1` and `c2` hold d values a
/// row, row-major: r = c0 u + Σₖ c1ₖ ∂ₖu + Σₖ c2ₖ ∂ₖₖu − g (see [`nd`]). The row count is
/// `c0.len()`.
#[derive(Clone, Copy)]
pub struct Rows<'a, T> {
    pub x: &'a [T],
    pub c0: &'a [T],
    pub c1: &'a [T],
    pub c2: &'a [T],
    pub g: &'a [T],
    pub w: &'a [T],
    pub n_pde: usize,
}

impl<T> Rows<'_, T> {
    pub fn len(&self) -> usize {
        self.c0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.c0.is_empty()
    }
}

/// One thread's buffers, sized for a tile of `tile` rows; reused for every tile and step.
pub(crate) struct TileWs<T> {
    /// Pre-activation streams per affine layer (3·tile·width; layer 0's is unused).
    z: Vec<Vec<T>>,
    /// Activation streams per hidden layer (3·tile·width).
    a: Vec<Vec<T>>,
    /// σ' and σ'' per hidden layer (2·tile·width).
    s: Vec<Vec<T>>,
    /// Adjoint ping-pong buffers (3·tile·max width).
    bar: [Vec<T>; 2],
    /// Layer 0's weights repeated for every row of the tile (tile·width), so that its
    /// elementwise jet work can run as one flat loop.
    w0rep: Vec<T>,
    /// ∂L/∂θ of this thread's tiles, flat parameter order.
    pub grad: Vec<T>,
    pub pde: f64,
    pub bc: f64,
}

impl<T: Real> TileWs<T> {
    /// Sized for 1 + 2d streams (d = dims[0]; three for the 1-D network).
    pub fn new(dims: &[usize], tile: usize, n_params: usize) -> Self {
        let nl = dims.len() - 1;
        let wmax = dims.iter().copied().max().unwrap_or(1);
        let st = 1 + 2 * dims[0];
        Self {
            z: (0..nl)
                .map(|l| vec![T::ZERO; if l == 0 { 0 } else { st * tile * dims[l + 1] }])
                .collect(),
            a: (0..nl - 1)
                .map(|l| vec![T::ZERO; st * tile * dims[l + 1]])
                .collect(),
            s: (0..nl - 1)
                .map(|l| vec![T::ZERO; 2 * tile * dims[l + 1]])
                .collect(),
            bar: [
                vec![T::ZERO; st * tile * wmax],
                vec![T::ZERO; st * tile * wmax],
            ],
            w0rep: vec![T::ZERO; tile * dims[1]],
            grad: vec![T::ZERO; n_params],
            pde: 0.0,
            bc: 0.0,
        }
    }

    pub fn bytes(&self) -> usize {
        let n: usize = self
            .z
            .iter()
            .chain(&self.a)
            .chain(&self.s)
            .chain(&self.bar)
            .chain([&self.w0rep])
            .map(Vec::len)
            .sum();
        n * std::mem::size_of::<T>()
    }
}

/// dst (m × n, row-major) = or += lhs · rhs through faer's matmul, single-threaded (the engine
/// parallelises over tiles).
#[inline(always)]
fn gemm<T: Real>(dst: MatMut<'_, T>, acc: Accum, lhs: MatRef<'_, T>, rhs: MatRef<'_, T>) {
    faer::linalg::matmul::matmul(dst, acc, lhs, rhs, T::ONE, Par::Seq);
}

/// Rows r0..r0+n through forward, residual and (if `grad`) backward. Loss sums are added to
/// `ws.pde` / `ws.bc`, gradients to `ws.grad`; with `JAC` (and `grad`) the rows' ∂r/∂θ are
/// written to `jac` (n × N_p, row-major) instead and `ws.grad` is left alone. A non-empty `res`
/// (n values) receives the rows' residuals.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile<T: Real, A: Act, const FMA: bool, const JAC: bool>(
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
    let nl = dims.len() - 1; // affine layers; hidden ones are 0..nl-1
    let TileWs {
        z,
        a,
        s,
        bar,
        w0rep,
        grad: gr,
        pde,
        bc,
    } = ws;

    // Layer 0 from (x, 1, 0): z = x w + b row by row, then the jets as one flat loop (see the
    // hidden layers below for why).
    {
        let d = dims[1];
        let m = n * d;
        let w0 = &net.w[0][..d];
        let b0 = &net.b[0][..d];
        let wr = &mut w0rep[..m];
        let (a0, rest) = a[0][..3 * m].split_at_mut(m);
        let (a1, a2) = rest.split_at_mut(m);
        let (s1b, s2b) = s[0][..2 * m].split_at_mut(m);
        for (i, (zrow, wrow)) in a0
            .chunks_exact_mut(d)
            .zip(wr.chunks_exact_mut(d))
            .enumerate()
        {
            let x = rows.x[r0 + i];
            for j in 0..d {
                zrow[j] = T::fma::<FMA>(x, w0[j], b0[j]);
            }
            wrow.copy_from_slice(w0);
        }
        let (a0, a1, a2, wr) = (&mut a0[..m], &mut a1[..m], &mut a2[..m], &wr[..m]);
        let (s1b, s2b) = (&mut s1b[..m], &mut s2b[..m]);
        for k in 0..m {
            let w = wr[k];
            let (t, s1, s2) = A::fwd::<T, FMA>(a0[k]);
            a0[k] = t;
            a1[k] = s1 * w;
            a2[k] = s2 * w * w;
            s1b[k] = s1;
            s2b[k] = s2;
        }
    }

    // Affine layers 1..nl; activation on all but the last.
    for l in 1..nl {
        let (din, dout) = (dims[l], dims[l + 1]);
        let h = &a[l - 1][..3 * n * din];
        let zl = &mut z[l][..3 * n * dout];
        gemm(
            MatMut::from_row_major_slice_mut(zl, 3 * n, dout),
            Accum::Replace,
            MatRef::from_row_major_slice(h, 3 * n, din),
            MatRef::from_row_major_slice(&net.w[l][..dout * din], dout, din).transpose(),
        );
        if l == nl - 1 {
            break;
        }
        // The bias on the value rows, row by row; then the activation jets over the whole
        // n·dout block as one flat loop, so the vectoriser sees one long stream rather than n
        // rows of `dout` (40 f32 are 2.5 AVX-512 vectors: a per-row loop leaves a scalar tail
        // of 8 tanh evaluations in every row).
        let b = &net.b[l][..dout];
        let m = n * dout;
        let (z0, rest) = zl.split_at_mut(m);
        let (z1, z2) = rest.split_at(m);
        for row in z0.chunks_exact_mut(dout) {
            for (v, &bj) in row.iter_mut().zip(b) {
                *v += bj;
            }
        }
        let (a0, rest) = a[l][..3 * m].split_at_mut(m);
        let (a1, a2) = rest.split_at_mut(m);
        let (s1b, s2b) = s[l][..2 * m].split_at_mut(m);
        let (z0, z1, z2) = (&z0[..m], &z1[..m], &z2[..m]);
        let (a0, a1, a2) = (&mut a0[..m], &mut a1[..m], &mut a2[..m]);
        let (s1b, s2b) = (&mut s1b[..m], &mut s2b[..m]);
        for k in 0..m {
            let (t, d1, d2, s1, s2) = jet_fwd::<T, A, FMA>(z0[k], z1[k], z2[k]);
            a0[k] = t;
            a1[k] = d1;
            a2[k] = d2;
            s1b[k] = s1;
            s2b[k] = s2;
        }
    }

    // Residual, loss and the output adjoints (into bar[0] as a 3n × 1 matrix).
    let zo = &z[nl - 1][..3 * n];
    let bl = net.b[nl - 1][0];
    let ub = &mut bar[0][..3 * n];
    let (mut lp, mut lb) = (0.0f64, 0.0f64);
    for i in 0..n {
        let gi = r0 + i;
        let u = zo[i] + bl;
        let (du, d2u) = (zo[n + i], zo[2 * n + i]);
        let (c0, c1, c2) = (rows.c0[gi], rows.c1[gi], rows.c2[gi]);
        let r = residual(u, du, d2u, c0, c1, c2, rows.g[gi]);
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
        ub[i] = seed * c0;
        ub[n + i] = seed * c1;
        ub[2 * n + i] = seed * c2;
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
        let zb = &mut zb[..3 * n * dout];
        let gb = &mut gr[ob..ob + dout];
        if l < nl - 1 {
            // ā → z̄ in place over the flat n·dout block (see the forward pass), then ∂L/∂b
            // (or the bias columns of J) row by row.
            let m = n * dout;
            let (b0, rest) = zb.split_at_mut(m);
            let (b1, b2) = rest.split_at_mut(m);
            let zl = &z[l][..3 * m];
            let (z1, z2) = (&zl[m..2 * m], &zl[2 * m..3 * m]);
            let t = &a[l][..m];
            let (s1b, s2b) = s[l][..2 * m].split_at(m);
            let (b0, b1, b2) = (&mut b0[..m], &mut b1[..m], &mut b2[..m]);
            let (s1b, s2b) = (&s1b[..m], &s2b[..m]);
            for k in 0..m {
                let (zb0, zb1, zb2) = jet_bwd::<T, A, FMA>(
                    (b0[k], b1[k], b2[k]),
                    (t[k], s1b[k], s2b[k]),
                    z1[k],
                    z2[k],
                );
                b0[k] = zb0;
                b1[k] = zb1;
                b2[k] = zb2;
            }
            for (i, row) in b0.chunks_exact(dout).enumerate() {
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
        let h = &a[l - 1][..3 * n * din];
        if JAC {
            // Row i of the weight block: Σ_s z̄^s_i ⊗ h^s_i, (out × in) row-major.
            let (sz, sh) = (n * dout, n * din);
            for i in 0..n {
                let row = &mut jac[i * np + ow..i * np + ow + dout * din];
                let (h0, h1, h2) = (
                    &h[i * din..(i + 1) * din],
                    &h[sh + i * din..sh + (i + 1) * din],
                    &h[2 * sh + i * din..2 * sh + (i + 1) * din],
                );
                for o in 0..dout {
                    let k = i * dout + o;
                    let (g0, g1, g2) = (zb[k], zb[sz + k], zb[2 * sz + k]);
                    let out = &mut row[o * din..(o + 1) * din];
                    for c in 0..din {
                        out[c] = T::fma::<FMA>(g2, h2[c], T::fma::<FMA>(g1, h1[c], g0 * h0[c]));
                    }
                }
            }
        } else {
            gemm(
                MatMut::from_row_major_slice_mut(&mut gr[ow..ow + dout * din], dout, din),
                Accum::Add,
                MatRef::from_row_major_slice(&*zb, 3 * n, dout).transpose(),
                MatRef::from_row_major_slice(h, 3 * n, din),
            );
        }
        let zbm = MatRef::from_row_major_slice(&*zb, 3 * n, dout);
        gemm(
            MatMut::from_row_major_slice_mut(&mut next[..3 * n * din], 3 * n, din),
            Accum::Replace,
            zbm,
            MatRef::from_row_major_slice(&net.w[l][..dout * din], dout, din),
        );
        cur = 1 - cur;
    }

    // Layer 0: ā → z̄ with z' = w, z'' = 0 (flat, into the adjoint buffer), then ∂L/∂w0 and
    // ∂L/∂b0 (or J's columns) row by row.
    let d = dims[1];
    let m = n * d;
    let (ow, ob) = net.offsets[0];
    let (gw, gb) = {
        let (lo, hi) = gr.split_at_mut(ob);
        (&mut lo[ow..ow + d], &mut hi[..d])
    };
    let ab = &mut bar[cur][..3 * m];
    let (b0, rest) = ab.split_at_mut(m);
    let (b1, b2) = rest.split_at_mut(m);
    let (b0, b1, b2) = (&mut b0[..m], &mut b1[..m], &b2[..m]);
    let t = &a[0][..m];
    let (s1b, s2b) = s[0][..2 * m].split_at(m);
    let (s1b, s2b, wr) = (&s1b[..m], &s2b[..m], &w0rep[..m]);
    for k in 0..m {
        let (s1, s2, w) = (s1b[k], s2b[k], wr[k]);
        let s3 = A::s3::<T, FMA>(t[k], s1, s2);
        let (ab0, ab1, ab2) = (b0[k], b1[k], b2[k]);
        b0[k] = ab0 * s1 + ab1 * s2 * w + ab2 * s3 * w * w;
        b1[k] = ab1 * s1 + T::of(2.0) * ab2 * s2 * w;
    }
    for (i, (zb0, zb1)) in b0.chunks_exact(d).zip(b1.chunks_exact(d)).enumerate() {
        let x = rows.x[r0 + i];
        if JAC {
            let row = &mut jac[i * np..(i + 1) * np];
            for j in 0..d {
                row[ow + j] = T::fma::<FMA>(zb0[j], x, zb1[j]);
            }
            row[ob..ob + d].copy_from_slice(zb0);
        } else {
            for j in 0..d {
                gw[j] += T::fma::<FMA>(zb0[j], x, zb1[j]);
                gb[j] += zb0[j];
            }
        }
    }
}
