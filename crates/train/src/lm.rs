//! Second-order least-squares training from the residual Jacobian: Levenberg–Marquardt (`lm`)
//! and damped Gauss–Newton with a backtracking line search (`gn`).
//!
//! Both work on the weighted residual r̂ = D^½ r with D = diag(w) the loss weights of eq. (7), so
//! the objective is exactly the PINN loss L(θ) = ½‖r̂‖² = Σ w_i ½ r_i². With Ĵ = D^½ J
//! (J = ∂r/∂θ from [`mspinn_ntk::set_jacobian`]) and g = Ĵᵀ r̂ = ∇L, a step δ solves
//!
//! ```text
//! (Ĵᵀ Ĵ + μ M) δ = −Ĵᵀ r̂            M = I (default) or diag(ĴᵀĴ) (Marquardt)
//! ```
//!
//! in one of two equivalent ways ([`SolveSpace`]): in parameter space, a Cholesky factorisation
//! of the N_p × N_p matrix ĴᵀĴ + μI; or in sample space through the push-through (Woodbury)
//! identity δ = −Ĵᵀ (Ĵ Ĵᵀ + μ I)⁻¹ r̂, an N × N Cholesky of the (weighted) NTK plus μI. With
//! Marquardt scaling both run on Ĵ_s = Ĵ S, S = M^{-½}, and δ = S η where η solves the identity-
//! damped system for Ĵ_s. All products are faer matmuls in f64 on the host; only the lower
//! triangle of the Gram matrix is formed (a symmetric rank-k update, half the FLOPs).
//!
//! **Levenberg–Marquardt** accepts a step when the gain ratio
//! ρ = (L(θ) − L(θ+δ)) / (L(θ) − ½‖r̂ + Ĵδ‖²) exceeds [`LmOptions::accept_ratio`], and adapts μ by
//! Nielsen's rule (Madsen, Nielsen & Tingleff, *Methods for non-linear least squares problems*,
//! 2004, alg. 3.16): on success μ ← μ · max(1/3, 1 − (2ρ − 1)³) and ν ← 2; on failure μ ← μ ν,
//! ν ← 2ν (the damping matrix M is Marquardt's diag(ĴᵀĴ) by default, see [`Damping`]). A rejected step leaves θ, J and the Gram matrix as they were, so it costs one
//! factorisation and one loss evaluation. A trial point with a non-finite loss is rejected like
//! any other bad step.
//!
//! **Gauss–Newton** takes the same direction with a fixed small μ (relative to the largest
//! diagonal entry of ĴᵀĴ) and chooses the step length by Armijo backtracking on L: α = 1, ½, ¼, …
//! until L(θ + αδ) ≤ L(θ) + c α gᵀδ. For a linear operator this is the energy natural gradient
//! step of Müller & Zeinhofer (2023) with a Tikhonov-regularised Gramian.
//!
//! Both keep θ only where the loss went down, so the network ends at the best point seen.

use std::time::Instant;

use candle_core::DType;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::matmul::triangular::BlockStructure;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use mspinn_model::{LossTerms, Mlp, ResidualSet};
use serde::{Deserialize, Serialize};

use crate::{Result, TrainError};

/// Where the damped normal equations are solved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SolveSpace {
    /// Parameter space when N ≥ N_p (N rows, N_p parameters), sample space otherwise: the smaller
    /// of the two Cholesky factorisations.
    #[default]
    Auto,
    /// Cholesky of ĴᵀĴ + μM, N_p × N_p.
    Parameter,
    /// Cholesky of Ĵ M⁻¹ Ĵᵀ + μI, N × N (the weighted NTK plus μI), then δ = −M⁻¹ Ĵᵀ y.
    Sample,
}

impl SolveSpace {
    /// The concrete space for `n` rows and `np` parameters.
    pub fn resolve(self, n: usize, np: usize) -> SolveSpace {
        match self {
            SolveSpace::Auto if n >= np => SolveSpace::Parameter,
            SolveSpace::Auto => SolveSpace::Sample,
            other => other,
        }
    }
    fn name(self) -> &'static str {
        match self {
            SolveSpace::Auto => "auto",
            SolveSpace::Parameter => "parameter-space",
            SolveSpace::Sample => "sample-space",
        }
    }
}

/// The damping matrix M in (ĴᵀĴ + μM) δ = −g.
///
/// Marquardt's scaling is the default because the columns of Ĵ differ by orders of magnitude
/// (first-layer weights against the output bias, and the 1/ε in the Darcy coefficient a'(x/ε)/ε),
/// so one μ for all of them over-damps the weak directions while it barely touches the strong
/// ones. Measured on the tiny Poisson PINN of `tests/lm.rs` (2×10 tanh, 20 points, seed 7):
/// Marquardt reaches L = 2.5e-31 in 167 iterations, μI is still at 2.2e-9 after 1000.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Damping {
    /// M = I (Levenberg): a Tikhonov-regularised Gauss–Newton step whose limit μ → ∞ is gradient
    /// descent with step 1/μ; μ has the units of the NTK's eigenvalues, and the sample-space
    /// (Woodbury) matrix is exactly the weighted NTK D^½JJᵀD^½ plus μI.
    Identity,
    /// M = diag(ĴᵀĴ) (Marquardt): invariant under rescaling individual parameters. A parameter
    /// with a near-zero Jacobian column would get almost no damping, so the diagonal is floored
    /// at [`LmOptions::marquardt_floor`] times its largest entry.
    #[default]
    Marquardt,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmOptions {
    /// Iteration cap (each LM iteration is one trial step, accepted or not; each GN iteration
    /// one direction and its line search). Set from the schedule phase by the trainer.
    pub max_iters: u64,
    pub space: SolveSpace,
    pub damping: Damping,
    /// Initial μ = τ · max_j (ĴᵀĴ)_jj for identity damping, μ = τ for Marquardt (τ = 1e-3 as
    /// Madsen, Nielsen & Tingleff recommend for a start far from the minimum).
    pub tau: f64,
    /// Accept an LM step when the gain ratio ρ exceeds this.
    pub accept_ratio: f64,
    /// Stop when μ exceeds this times its scale (max_j (ĴᵀĴ)_jj, or 1 for Marquardt): the step is
    /// then a gradient step shorter than round-off can resolve.
    pub mu_max_rel: f64,
    /// Stop when ‖∇L‖_∞ falls to this (0 disables it).
    pub tol_grad: f64,
    /// Stop when an accepted step has ‖δ‖₂ ≤ tol_step · (‖θ‖₂ + tol_step).
    pub tol_step: f64,
    /// Floor of diag(ĴᵀĴ) relative to its largest entry, for Marquardt damping.
    pub marquardt_floor: f64,
    /// Gauss–Newton's fixed damping, relative to max_j (ĴᵀĴ)_jj (identity) or absolute
    /// (Marquardt).
    pub gn_mu_rel: f64,
    /// Armijo constant c in L(θ + αδ) ≤ L(θ) + c α gᵀδ.
    pub armijo_c: f64,
    /// Halvings of α before the line search gives up (and the phase stops).
    pub max_backtracks: u32,
}

impl Default for LmOptions {
    fn default() -> Self {
        Self {
            max_iters: 500,
            space: SolveSpace::Auto,
            damping: Damping::Marquardt,
            tau: 1e-3,
            accept_ratio: 1e-4,
            mu_max_rel: 1e12,
            tol_grad: 0.0,
            tol_step: 1e-15,
            marquardt_floor: 1e-12,
            gn_mu_rel: 1e-10,
            armijo_c: 1e-4,
            max_backtracks: 40,
        }
    }
}

impl LmOptions {
    /// Rejects settings that would make the iteration meaningless, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, value: f64, reason: &str| {
            Err(TrainError::Option {
                field,
                value: value.to_string(),
                reason: reason.into(),
            })
        };
        let positive = [
            ("tau", self.tau),
            ("mu_max_rel", self.mu_max_rel),
            ("gn_mu_rel", self.gn_mu_rel),
            ("marquardt_floor", self.marquardt_floor),
        ];
        for (field, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(field, v, "must be finite and > 0");
            }
        }
        for (field, v) in [("tol_grad", self.tol_grad), ("tol_step", self.tol_step)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, v, "must be finite and ≥ 0");
            }
        }
        for (field, v) in [
            ("accept_ratio", self.accept_ratio),
            ("armijo_c", self.armijo_c),
        ] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return bad(field, v, "must lie in [0, 1)");
            }
        }
        Ok(())
    }
}

/// One iteration of an `lm` or `gn` phase.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LmIteration {
    /// 1-based iteration within the phase.
    pub iteration: u64,
    /// The damping the step was computed with.
    pub mu: f64,
    /// ‖δ‖₂ of the step taken (GN: α‖δ‖₂), or of the rejected trial step.
    pub step_norm: f64,
    /// LM: the gain ratio ρ; GN: the step length α (0 when the line search failed).
    pub ratio: f64,
    pub accepted: bool,
    /// L(θ) after the iteration.
    pub loss: f64,
    /// Wall time of this iteration.
    pub seconds: f64,
}

/// What an `lm` / `gn` phase did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmOutcome {
    /// "lm" or "gn".
    pub method: String,
    /// The space the systems were solved in (never `Auto`).
    pub space: SolveSpace,
    pub iterations: u64,
    pub accepted: u64,
    pub initial_loss: f64,
    pub final_loss: f64,
    pub reason: String,
    pub history: Vec<LmIteration>,
}

/// The residual vector r (f64, host) and the eq. (7) loss terms computed from it.
fn residual_and_terms(mlp: &Mlp, set: &ResidualSet) -> Result<(Vec<f64>, LossTerms)> {
    let r: Vec<f64> = set
        .residual(&mlp.jets(&set.x)?)?
        .flatten_all()?
        .to_dtype(DType::F64)?
        .to_vec1()?;
    let half_sq = |range: std::ops::Range<usize>| -> f64 {
        range.map(|i| 0.5 * set.host_w[i] * r[i] * r[i]).sum()
    };
    let pde = half_sq(0..set.n_pde);
    let bc = half_sq(set.n_pde..set.len());
    Ok((
        r,
        LossTerms {
            total: pde + bc,
            pde,
            bc,
        },
    ))
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
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
pub(crate) fn gram_matrix(
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
    let (lhs, rhs) = match space {
        SolveSpace::Sample => (jm, jm.transpose()),
        _ => (jm.transpose(), jm),
    };
    let mut gram = match reuse {
        Some(m) if m.nrows() == order && m.ncols() == order => m,
        _ => Mat::zeros(order, order),
    };
    faer::linalg::matmul::triangular::matmul(
        gram.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        lhs,
        BlockStructure::Rectangular,
        rhs,
        BlockStructure::Rectangular,
        1.0,
        Par::rayon(0),
    );
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
struct Linearisation {
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
    grad_inf: f64,
}

impl Linearisation {
    /// The linearisation at the network's θ. `recycle` hands over the previous one's buffers
    /// (J, the Gram matrix, the factor: together ~3 N·max(N, N_p) values) so that an iteration
    /// allocates nothing large: freshly mapped pages are zeroed by the kernel on first touch,
    /// which measured 43 % of an LM iteration at N = 4096 before the buffers were reused.
    fn new(
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
        if !mspinn_model::cpu_engine::jacobian_f64_into(mlp, set, 0, n, &mut js)? {
            js = mspinn_ntk::set_jacobian(mlp, set, 0, n)?
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1()?;
        }
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

    fn jm(&self) -> MatRef<'_, f64> {
        MatRef::from_row_major_slice(&self.js, self.n, self.np)
    }

    /// η for damping μ, raising μ ×10 while the Cholesky factorisation fails (it can, in
    /// floating point, when μ is below round-off of the Gram matrix's largest eigenvalue).
    /// Returns (η, the μ actually used).
    fn solve_eta(&mut self, mu: f64, mu_cap: f64, method: &'static str) -> Result<(Vec<f64>, f64)> {
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
    fn delta(&self, eta: &[f64]) -> Vec<f64> {
        match &self.scale {
            Some(s) => eta.iter().zip(s).map(|(e, s)| e * s).collect(),
            None => eta.to_vec(),
        }
    }

    /// gᵀδ = g_sᵀη (negative for a descent direction).
    fn slope(&self, eta: &[f64]) -> f64 {
        dot(&self.gs, eta)
    }

    /// L(θ) − ½‖r̂ + Ĵδ‖² = −gᵀδ − ½‖Ĵ_sη‖², the decrease the linear model predicts.
    fn predicted_decrease(&self, eta: &[f64]) -> f64 {
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
    fn mu_scale(&self) -> f64 {
        match self.scale {
            None => self.diag_max.max(f64::MIN_POSITIVE),
            Some(_) => 1.0,
        }
    }
}

/// The damped Gauss–Newton step δ solving (ĴᵀĴ + μM) δ = −Ĵᵀr̂ at the network's current θ, in
/// the given space. μ is absolute. For tests and diagnostics; the phases below use the same path.
pub fn gauss_newton_step(
    mlp: &Mlp,
    set: &ResidualSet,
    mu: f64,
    space: SolveSpace,
    damping: Damping,
) -> Result<Vec<f64>> {
    if !(mu.is_finite() && mu > 0.0) {
        return Err(TrainError::Option {
            field: "mu",
            value: mu.to_string(),
            reason: "the damping must be finite and > 0".into(),
        });
    }
    let (r, _) = residual_and_terms(mlp, set)?;
    let mut lin = Linearisation::new(
        mlp,
        set,
        &r,
        space,
        damping,
        LmOptions::default().marquardt_floor,
        None,
    )?;
    let (eta, used) = lin.solve_eta(mu, mu, "gauss-newton step")?;
    debug_assert_eq!(used, mu);
    Ok(lin.delta(&eta))
}

/// Called at the start (iteration 0, μ of the first step) and after every iteration with
/// (iteration, μ, loss terms at the current θ). An error stops the phase and is returned.
pub type OnIteration<'a> = dyn FnMut(u64, f64, &LossTerms) -> Result<()> + 'a;

/// The first-order stopping test shared by both methods.
fn converged(terms: &LossTerms, lin: &Linearisation, opts: &LmOptions) -> Option<String> {
    if terms.total == 0.0 {
        Some("the loss is exactly 0".into())
    } else if lin.grad_inf <= opts.tol_grad {
        Some(format!(
            "‖∇L‖∞ = {:e} ≤ tol_grad = {:e}",
            lin.grad_inf, opts.tol_grad
        ))
    } else {
        None
    }
}

fn add_scaled(theta: &[f64], alpha: f64, delta: &[f64]) -> Vec<f64> {
    theta
        .iter()
        .zip(delta)
        .map(|(t, d)| t + alpha * d)
        .collect()
}

/// The common start of an LM or GN phase: validated options, θ, the residual and loss at θ
/// (which must be finite), and an outcome to fill in.
fn start_phase(
    method: &str,
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &LmOptions,
    on_iter: &mut OnIteration<'_>,
) -> Result<(Vec<f64>, Vec<f64>, LossTerms, LmOutcome)> {
    opts.validate()?;
    let theta = mlp.flat_params()?;
    let (r, terms) = residual_and_terms(mlp, set)?;
    let initial_loss = terms.total;
    let out = LmOutcome {
        method: method.into(),
        space: opts.space.resolve(set.len(), mlp.num_params()),
        iterations: 0,
        accepted: 0,
        initial_loss,
        final_loss: initial_loss,
        reason: format!("reached {} iterations", opts.max_iters),
        history: Vec::new(),
    };
    if !terms.is_finite() {
        on_iter(0, f64::NAN, &terms)?;
        return Err(TrainError::Lm(format!(
            "the loss at the start is not finite ({})",
            terms.total
        )));
    }
    Ok((theta, r, terms, out))
}

/// Levenberg–Marquardt from the network's current parameters; leaves the last accepted point
/// (the best one) in the network.
pub fn run_lm(
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &LmOptions,
    on_iter: &mut OnIteration<'_>,
) -> Result<LmOutcome> {
    let (mut theta, mut r, mut terms, mut out) = start_phase("lm", mlp, set, opts, on_iter)?;
    let floor = opts.marquardt_floor;
    let mut lin = Linearisation::new(mlp, set, &r, opts.space, opts.damping, floor, None)?;
    let mut mu = opts.tau * lin.mu_scale();
    let mut nu = 2.0f64;
    on_iter(0, mu, &terms)?;
    for k in 1..=opts.max_iters {
        let t0 = Instant::now();
        if let Some(reason) = converged(&terms, &lin, opts) {
            out.reason = reason;
            break;
        }
        let mu_cap = opts.mu_max_rel * lin.mu_scale();
        if mu > mu_cap {
            out.reason = format!("damping μ = {mu:e} exceeded {mu_cap:e}");
            break;
        }
        let (eta, used) = lin.solve_eta(mu, mu_cap, "Levenberg–Marquardt")?;
        mu = used;
        let delta = lin.delta(&eta);
        let step_norm = norm2(&delta);
        let pred = lin.predicted_decrease(&eta);
        let trial = add_scaled(&theta, 1.0, &delta);
        mlp.set_flat_params(&trial)?;
        let (r_new, terms_new) = residual_and_terms(mlp, set)?;
        let actual = terms.total - terms_new.total;
        let rho = if pred > 0.0 && terms_new.total.is_finite() {
            actual / pred
        } else {
            f64::NEG_INFINITY
        };
        let accepted = rho > opts.accept_ratio;
        let mu_step = mu;
        if accepted {
            theta = trial;
            r = r_new;
            terms = terms_new;
            out.accepted += 1;
            // Floored so that μ never underflows to 0 (where μM no longer regularises anything).
            mu = (mu * (1.0 - (2.0 * rho - 1.0).powi(3)).max(1.0 / 3.0)).max(f64::MIN_POSITIVE);
            nu = 2.0;
        } else {
            mlp.set_flat_params(&theta)?;
            mu *= nu;
            nu = (nu * 2.0).min(1e150);
        }
        out.iterations = k;
        let small_step = accepted && step_norm <= opts.tol_step * (norm2(&theta) + opts.tol_step);
        if accepted && !small_step && k < opts.max_iters {
            // Before the record, so that an accepted iteration's time includes the new J and
            // Gram matrix it pays for (most of its cost).
            lin = Linearisation::new(mlp, set, &r, opts.space, opts.damping, floor, Some(lin))?;
        }
        out.history.push(LmIteration {
            iteration: k,
            mu: mu_step,
            step_norm,
            ratio: rho,
            accepted,
            loss: terms.total,
            seconds: t0.elapsed().as_secs_f64(),
        });
        on_iter(k, mu, &terms)?;
        if small_step {
            out.reason = format!("step ‖δ‖ = {step_norm:e} below tol_step");
            break;
        }
    }
    mlp.set_flat_params(&theta)?;
    out.final_loss = terms.total;
    Ok(out)
}

/// Damped Gauss–Newton with Armijo backtracking from the network's current parameters; leaves
/// the last accepted (best) point in the network.
pub fn run_gn(
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &LmOptions,
    on_iter: &mut OnIteration<'_>,
) -> Result<LmOutcome> {
    let (mut theta, mut r, mut terms, mut out) = start_phase("gn", mlp, set, opts, on_iter)?;
    let mut first = true;
    let mut previous: Option<Linearisation> = None;
    for k in 1..=opts.max_iters {
        let t0 = Instant::now();
        let mut lin = Linearisation::new(
            mlp,
            set,
            &r,
            opts.space,
            opts.damping,
            opts.marquardt_floor,
            previous.take(),
        )?;
        let mu0 = opts.gn_mu_rel * lin.mu_scale();
        if first {
            on_iter(0, mu0, &terms)?;
            first = false;
        }
        if let Some(reason) = converged(&terms, &lin, opts) {
            out.reason = reason;
            break;
        }
        let mu_cap = opts.mu_max_rel * lin.mu_scale();
        let (eta, mu) = lin.solve_eta(mu0, mu_cap, "Gauss–Newton")?;
        let delta = lin.delta(&eta);
        let slope = lin.slope(&eta);
        let mut alpha = 1.0;
        let mut found = None;
        if slope < 0.0 {
            for _ in 0..=opts.max_backtracks {
                let trial = add_scaled(&theta, alpha, &delta);
                mlp.set_flat_params(&trial)?;
                let (r_new, t_new) = residual_and_terms(mlp, set)?;
                if t_new.total.is_finite()
                    && t_new.total <= terms.total + opts.armijo_c * alpha * slope
                {
                    found = Some((trial, r_new, t_new));
                    break;
                }
                alpha *= 0.5;
            }
        }
        let step_norm = norm2(&delta);
        let accepted = found.is_some();
        match found {
            Some((trial, r_new, t_new)) => {
                theta = trial;
                r = r_new;
                terms = t_new;
                out.accepted += 1;
            }
            None => {
                mlp.set_flat_params(&theta)?;
                alpha = 0.0;
            }
        }
        out.iterations = k;
        out.history.push(LmIteration {
            iteration: k,
            mu,
            step_norm: alpha * step_norm,
            ratio: alpha,
            accepted,
            loss: terms.total,
            seconds: t0.elapsed().as_secs_f64(),
        });
        on_iter(k, mu, &terms)?;
        if !accepted {
            out.reason = format!(
                "line search found no decrease in {} halvings (gᵀδ = {slope:e})",
                opts.max_backtracks
            );
            break;
        }
        if alpha * step_norm <= opts.tol_step * (norm2(&theta) + opts.tol_step) {
            out.reason = format!("step ‖αδ‖ = {:e} below tol_step", alpha * step_norm);
            break;
        }
        previous = Some(lin);
    }
    mlp.set_flat_params(&theta)?;
    out.final_loss = terms.total;
    Ok(out)
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
