//! The least-squares problem of an LM / GN phase linearised at one θ: the scaled Jacobian
//! Ĵ = D^½ J S, the gradient, the Gram matrix of the normal equations (sample or parameter space)
//! and its damped Cholesky solve. Everything here is independent of μ except the solve.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use mspinn_model::{Evaluator, Mlp, ResidualSet};
use mspinn_ntk::{syrk_lower, Side};

use super::{Damping, SolveSpace};
use crate::{Result, TrainError};

pub(super) fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn col(v: &[f64]) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(v, v.len(), 1)
}

fn col_mut(v: &mut [f64]) -> MatMut<'_, f64> {
    let n = v.len();
    MatMut::from_column_major_slice_mut(v, n, 1)
}

/// The lower triangle of ĴᵀĴ (parameter space) or ĴĴᵀ (sample space) of the row-major N × N_p
/// matrix `js`. On the CPU a faer triangular product (half the flops of a full one); on any other
/// device a candle matmul there (cuBLAS on a GPU, where the O(N·N_p·min(N, N_p)) product is the
/// cost of an iteration), copied back for the Cholesky factorisation on the host: one
/// factorisation of order ≤ ~10⁴ per iteration is not worth a cuSOLVER dependency yet.
/// `reuse` is a previous result whose storage is overwritten when its order fits (the strict
/// upper triangle is never written, so it stays zero).
pub(super) fn gram_matrix(
    js: &[f64],
    n: usize,
    np: usize,
    space: SolveSpace,
    device: &candle_core::Device,
    reuse: Option<Mat<f64>>,
) -> Result<Mat<f64>> {
    if !device.is_cpu() {
        return candle_gram(js, n, np, space, device);
    }
    let order = if space == SolveSpace::Sample { n } else { np };
    let jm = MatRef::from_row_major_slice(js, n, np);
    let side = match space {
        SolveSpace::Sample => Side::Rows,
        _ => Side::Columns,
    };
    let mut gram = match reuse {
        Some(m) if m.nrows() == order && m.ncols() == order => m,
        _ => Mat::zeros(order, order),
    };
    syrk_lower(gram.as_mut(), Accum::Replace, jm, side);
    Ok(gram)
}

/// [`gram_matrix`] through a candle matmul on `device` (any device, so the CPU can test it).
fn candle_gram(
    js: &[f64],
    n: usize,
    np: usize,
    space: SolveSpace,
    device: &candle_core::Device,
) -> Result<Mat<f64>> {
    let order = if space == SolveSpace::Sample { n } else { np };
    let j = candle_core::Tensor::from_slice(js, (n, np), device)?;
    let g = match space {
        SolveSpace::Sample => j.matmul(&j.t()?)?,
        _ => j.t()?.matmul(&j)?,
    };
    let host: Vec<f64> = g.flatten_all()?.to_vec1()?;
    Ok(Mat::from_fn(order, order, |i, k| {
        if k <= i {
            host[i * order + k]
        } else {
            0.0
        }
    }))
}

/// Everything about the least-squares problem at one θ that does not depend on μ.
pub(super) struct Linearisation {
    n: usize,
    np: usize,
    /// Ĵ_s = D^½ J S, row-major N × N_p.
    js: Vec<f64>,
    /// r̂ = D^½ r.
    rhat: Vec<f64>,
    /// g_s = Ĵ_sᵀ r̂ = S ∇L.
    gs: Vec<f64>,
    /// S = M^{-½} (Marquardt) or None (identity).
    scale: Option<Vec<f64>>,
    /// Lower triangle of Ĵ_sᵀĴ_s (parameter space) or Ĵ_sĴ_sᵀ (sample space).
    gram: Mat<f64>,
    /// Scratch for the Cholesky factor of gram + μI, kept across iterations with `js` and
    /// `gram` (see [`Linearisation::new`]'s `recycle`).
    factor: Mat<f64>,
    space: SolveSpace,
    /// max_j (ĴᵀĴ)_jj, the scale of identity damping.
    diag_max: f64,
    /// ‖∇L‖_∞.
    pub(super) grad_inf: f64,
}

impl Linearisation {
    /// The linearisation at the network's θ. `recycle` hands over the previous one's buffers
    /// (J, the Gram matrix, the factor: together ~3 N·max(N, N_p) values) so that an iteration
    /// allocates nothing large: freshly mapped pages are zeroed by the operating system on first touch,
    /// which measured 43 % of an LM iteration at N = 4096 before the buffers were reused.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        evaluator: &mut dyn Evaluator,
        mlp: &Mlp,
        set: &ResidualSet,
        r: &[f64],
        space: SolveSpace,
        damping: Damping,
        floor: f64,
        recycle: Option<Linearisation>,
    ) -> Result<Self> {
        let (n, np) = (set.len(), mlp.num_params());
        let (mut js, old_gram, factor) = match recycle {
            Some(old) => (old.js, Some(old.gram), old.factor),
            None => (Vec::new(), None, Mat::new()),
        };
        evaluator.jacobian_f64(mlp, set, 0..n, &mut js)?;
        if js.len() != n * np || r.len() != n {
            return Err(TrainError::Lm(format!(
                "the Jacobian has {} entries and the residual {} rows; expected {n} × {np} and {n}",
                js.len(),
                r.len()
            )));
        }
        let sqrt_w: Vec<f64> = set.host_w.iter().map(|w| w.sqrt()).collect();
        for (row, s) in js.chunks_exact_mut(np).zip(&sqrt_w) {
            row.iter_mut().for_each(|v| *v *= s);
        }
        let rhat: Vec<f64> = r.iter().zip(&sqrt_w).map(|(r, s)| r * s).collect();
        let mut diag = vec![0.0; np];
        for row in js.chunks_exact(np) {
            for (d, v) in diag.iter_mut().zip(row) {
                *d += v * v;
            }
        }
        let diag_max = diag.iter().copied().fold(0.0, f64::max);
        let mut g = vec![0.0; np];
        let jm = MatRef::from_row_major_slice(&js, n, np);
        faer::linalg::matmul::matmul(
            col_mut(&mut g),
            Accum::Replace,
            jm.transpose(),
            col(&rhat),
            1.0,
            Par::rayon(0),
        );
        let grad_inf = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let scale = match damping {
            Damping::Identity => None,
            Damping::Marquardt => {
                let lo = floor * diag_max;
                let s: Vec<f64> = diag
                    .iter()
                    .map(|&d| {
                        let m = d.max(lo);
                        if m > 0.0 {
                            1.0 / m.sqrt()
                        } else {
                            1.0
                        }
                    })
                    .collect();
                for row in js.chunks_exact_mut(np) {
                    row.iter_mut().zip(&s).for_each(|(v, s)| *v *= s);
                }
                g.iter_mut().zip(&s).for_each(|(v, s)| *v *= s);
                Some(s)
            }
        };
        let space = space.resolve(n, np);
        let gram = gram_matrix(&js, n, np, space, mlp.device(), old_gram)?;
        Ok(Self {
            n,
            np,
            js,
            rhat,
            gs: g,
            scale,
            gram,
            factor,
            space,
            diag_max,
            grad_inf,
        })
    }

    pub(super) fn jm(&self) -> MatRef<'_, f64> {
        MatRef::from_row_major_slice(&self.js, self.n, self.np)
    }

    /// η for damping μ, raising μ ×10 while the Cholesky factorisation fails (it can, in
    /// floating point, when μ is below round-off of the Gram matrix's largest eigenvalue).
    /// Returns (η, the μ actually used).
    pub(super) fn solve_eta(
        &mut self,
        mu: f64,
        mu_cap: f64,
        method: &'static str,
    ) -> Result<(Vec<f64>, f64)> {
        let order = self.gram.nrows();
        if self.factor.nrows() != order || self.factor.ncols() != order {
            self.factor = Mat::zeros(order, order);
        }
        let par = Par::rayon(0);
        let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(
            order,
            par,
            Default::default(),
        ));
        let mut mu = mu;
        loop {
            // The factor overwrites the lower triangle in place; the strict upper one is the
            // Gram matrix's zeros and is never read.
            self.factor.copy_from(&self.gram);
            for i in 0..order {
                self.factor[(i, i)] += mu;
            }
            let ok = llt::factor::cholesky_in_place(
                self.factor.as_mut(),
                Default::default(),
                par,
                MemStack::new(&mut mem),
                Default::default(),
            )
            .is_ok();
            if ok {
                let rhs = match self.space {
                    SolveSpace::Sample => &self.rhat,
                    _ => &self.gs,
                };
                let mut y = rhs.clone();
                // The triangular solves need no scratch; the factorisation's will do.
                llt::solve::solve_in_place(
                    self.factor.as_ref(),
                    col_mut(&mut y),
                    par,
                    MemStack::new(&mut mem),
                );
                let eta = match self.space {
                    SolveSpace::Sample => {
                        // y = (Ĵ_sĴ_sᵀ + μI)⁻¹ r̂, η = −Ĵ_sᵀ y.
                        let mut eta = vec![0.0; self.np];
                        faer::linalg::matmul::matmul(
                            col_mut(&mut eta),
                            Accum::Replace,
                            self.jm().transpose(),
                            col(&y),
                            -1.0,
                            par,
                        );
                        eta
                    }
                    _ => y.iter().map(|v| -v).collect(),
                };
                if eta.iter().all(|v| v.is_finite()) {
                    return Ok((eta, mu));
                }
            }
            let next = if mu > 0.0 {
                mu * 10.0
            } else {
                f64::EPSILON * self.diag_max.max(1.0)
            };
            if !(next.is_finite() && next <= mu_cap) {
                return Err(TrainError::Cholesky {
                    method,
                    space: self.space.name(),
                    n: order,
                    mu,
                });
            }
            mu = next;
        }
    }

    /// δ = S η.
    pub(super) fn delta(&self, eta: &[f64]) -> Vec<f64> {
        match &self.scale {
            Some(s) => eta.iter().zip(s).map(|(e, s)| e * s).collect(),
            None => eta.to_vec(),
        }
    }

    /// gᵀδ = g_sᵀη (negative for a descent direction).
    pub(super) fn slope(&self, eta: &[f64]) -> f64 {
        dot(&self.gs, eta)
    }

    /// L(θ) − ½‖r̂ + Ĵδ‖² = −gᵀδ − ½‖Ĵ_sη‖², the decrease the linear model predicts.
    pub(super) fn predicted_decrease(&self, eta: &[f64]) -> f64 {
        let mut jd = vec![0.0; self.n];
        faer::linalg::matmul::matmul(
            col_mut(&mut jd),
            Accum::Replace,
            self.jm(),
            col(eta),
            1.0,
            Par::rayon(0),
        );
        -self.slope(eta) - 0.5 * dot(&jd, &jd)
    }

    /// The scale μ is measured against: max diag(ĴᵀĴ) for identity damping, 1 for Marquardt
    /// (whose M already carries the scale).
    pub(super) fn mu_scale(&self) -> f64 {
        match self.scale {
            None => self.diag_max.max(f64::MIN_POSITIVE),
            Some(_) => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device path (candle matmul, cuBLAS on a GPU) and the CPU path (faer's triangular
    /// product) give the same lower triangle, in both spaces, on a matrix with N ≠ N_p.
    #[test]
    fn device_gram_equals_the_faer_triangular_product() {
        let (n, np) = (37, 23);
        let js: Vec<f64> = (0..n * np)
            .map(|k| ((k as f64 * 0.7391).sin() * 3.0).powi(3))
            .collect();
        let cpu = candle_core::Device::Cpu;
        for space in [SolveSpace::Sample, SolveSpace::Parameter] {
            let a = gram_matrix(&js, n, np, space, &cpu, None).unwrap();
            let b = candle_gram(&js, n, np, space, &cpu).unwrap();
            let order = if space == SolveSpace::Sample { n } else { np };
            assert_eq!((a.nrows(), b.nrows()), (order, order));
            let scale = (0..order).map(|i| a[(i, i)]).fold(0.0, f64::max);
            for i in 0..order {
                for k in 0..=i {
                    let (x, y) = (a[(i, k)], b[(i, k)]);
                    assert!(
                        (x - y).abs() <= 1e-13 * scale,
                        "{space:?} ({i},{k}): {x} vs {y}"
                    );
                }
            }
            // And against the definition, one entry at a time.
            let (i, k) = (order - 1, order / 2);
            let direct: f64 = match space {
                SolveSpace::Sample => (0..np).map(|c| js[i * np + c] * js[k * np + c]).sum(),
                _ => (0..n).map(|r| js[r * np + i] * js[r * np + k]).sum(),
            };
            assert!((a[(i, k)] - direct).abs() <= 1e-13 * scale);
        }
    }
}
