//! Second-order least-squares training from the residual Jacobian: Levenberg–Marquardt (`lm`)
//! and damped Gauss–Newton with a backtracking line search (`gn`).
//!
//! Both work on the weighted residual r̂ = D^½ r with D = diag(w) the loss weights of eq. (7), so
//! the objective is exactly the PINN loss L(θ) = ½‖r̂‖² = Σ w_i ½ r_i². With Ĵ = D^½ J
//! (J = ∂r/∂θ from the evaluator, [`mspinn_model::Evaluator::jacobian_f64`]) and g = Ĵᵀ r̂ = ∇L, a step δ solves
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

use mspinn_model::{Evaluator, LossTerms, Mlp, ResidualSet};
use serde::{Deserialize, Serialize};

mod linearisation;

use linearisation::{norm2, Linearisation};

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

/// The residual vector r (f64, host) and the eq. (7) loss terms from the same pass.
fn residual_and_terms(
    evaluator: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
) -> Result<(Vec<f64>, LossTerms)> {
    let mut r = Vec::with_capacity(set.len());
    let terms = evaluator.residuals(mlp, set, &mut r)?;
    Ok((r, terms))
}

/// The damped Gauss–Newton step δ solving (ĴᵀĴ + μM) δ = −Ĵᵀr̂ at the network's current θ, in
/// the given space. μ is absolute. For tests and diagnostics; the phases below use the same path.
pub fn gauss_newton_step(
    evaluator: &mut dyn Evaluator,
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
    let (r, _) = residual_and_terms(evaluator, mlp, set)?;
    let mut lin = Linearisation::new(
        evaluator,
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
    evaluator: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &LmOptions,
    on_iter: &mut OnIteration<'_>,
) -> Result<(Vec<f64>, Vec<f64>, LossTerms, LmOutcome)> {
    opts.validate()?;
    let theta = mlp.flat_params()?;
    let (r, terms) = residual_and_terms(evaluator, mlp, set)?;
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
    evaluator: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &LmOptions,
    on_iter: &mut OnIteration<'_>,
) -> Result<LmOutcome> {
    let (mut theta, mut r, mut terms, mut out) =
        start_phase("lm", evaluator, mlp, set, opts, on_iter)?;
    let floor = opts.marquardt_floor;
    let mut lin = Linearisation::new(
        evaluator,
        mlp,
        set,
        &r,
        opts.space,
        opts.damping,
        floor,
        None,
    )?;
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
        let (r_new, terms_new) = residual_and_terms(evaluator, mlp, set)?;
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
            lin = Linearisation::new(
                evaluator,
                mlp,
                set,
                &r,
                opts.space,
                opts.damping,
                floor,
                Some(lin),
            )?;
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
    evaluator: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &LmOptions,
    on_iter: &mut OnIteration<'_>,
) -> Result<LmOutcome> {
    let (mut theta, mut r, mut terms, mut out) =
        start_phase("gn", evaluator, mlp, set, opts, on_iter)?;
    let mut first = true;
    let mut previous: Option<Linearisation> = None;
    for k in 1..=opts.max_iters {
        let t0 = Instant::now();
        let mut lin = Linearisation::new(
            evaluator,
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
                let (r_new, t_new) = residual_and_terms(evaluator, mlp, set)?;
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
