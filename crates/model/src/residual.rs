//! The one residual every problem kind shares, as tensors on the run's device.
//!
//! mspinn-problem reduces Darcy, Poisson, regression and boundary rows to
//! r_i = c2_i u''(x_i) + c1_i u'(x_i) + c0_i u(x_i) − g_i (Darcy: c2 = −a(x/ε), c1 = −a'(x/ε)/ε).
//! The coefficients are evaluated once per point set on the host, so nothing on the device ever
//! evaluates a user's expression. PDE and boundary rows are stacked into one set with per-row loss
//! weights w_i (1/N_c for PDE rows, λ/N_b for boundary rows): the loss of eq. (7) is Σ w_i ½ r_i²
//! and the NTK is J^T… with D = diag(w), both over one forward pass.

use candle_core::{DType, Device, Tensor};
use mspinn_kernels::{fused_residual, pack_constants, stack_jets, FusedResidual, Outputs};
use mspinn_problem::{LinearResidual, LinearResidual2d};

use crate::mlp::{check_dtype, points_tensor};
use crate::{Jets, ModelError, Result};

/// In d dimensions (`dim` > 1, [`ResidualSet::new_2d`]) the rows are
/// r_i = c0_i u + Σₖ c1_ik ∂ₖu + Σₖ c2_ik ∂ₖₖu − g_i: `x`, `c1` and `c2` are (N, d), the other
/// columns (N, 1); the set carries its dimension, so the seam's signatures stay as they are.
#[derive(Clone, Debug)]
pub struct ResidualSet {
    /// Points, (N, d): the n_pde PDE rows first, then the n_bc boundary rows.
    pub x: Tensor,
    /// Coefficient of u, (N, 1).
    pub c0: Tensor,
    /// Coefficients of ∂ₖu, (N, d).
    pub c1: Tensor,
    /// Coefficients of ∂ₖₖu, (N, d).
    pub c2: Tensor,
    pub g: Tensor,
    /// Loss weights w_i, (N, 1).
    pub w: Tensor,
    pub n_pde: usize,
    pub n_bc: usize,
    pub lambda: f64,
    /// d, the dimension of the points.
    pub dim: usize,
    /// The same rows on the host, in f64, for the NTK and diagnostics. For d > 1 only `c0` and
    /// `g` are meaningful; `x`, `c1` and `c2` are NaN so that 1-D code reading them by mistake
    /// yields NaN, never a plausible number (the 2-D rows are in `host_2d`).
    pub host: LinearResidual,
    /// The 2-D rows (PDE then boundary), for d = 2.
    pub host_2d: Option<LinearResidual2d>,
    pub host_w: Vec<f64>,
    /// (c0, c1, c2, g, w) packed once as the (5, N) tensor the fused residual op reads, so a
    /// training step does no packing. Built from the same host values as the columns above.
    pub packed: Tensor,
}

impl ResidualSet {
    /// Stacks `pde` and `bc` rows with the weights of eq. (7).
    pub fn new(
        pde: &LinearResidual,
        bc: &LinearResidual,
        lambda: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        check_dtype(dtype)?;
        if pde.is_empty() {
            return Err(ModelError::Config {
                field: "points",
                value: "0".into(),
                reason: "a residual set needs at least one collocation row".into(),
            });
        }
        if !lambda.is_finite() || lambda < 0.0 {
            return Err(ModelError::Config {
                field: "lambda",
                value: lambda.to_string(),
                reason: "the boundary weight must be finite and ≥ 0".into(),
            });
        }
        for (name, r) in [("pde rows", pde), ("boundary rows", bc)] {
            let n = r.x.len();
            if [&r.c0, &r.c1, &r.c2, &r.g].iter().any(|v| v.len() != n) {
                return Err(ModelError::Shape {
                    what: name.into(),
                    expected: format!("{n} coefficients per column"),
                    got: format!(
                        "c0 {}, c1 {}, c2 {}, g {}",
                        r.c0.len(),
                        r.c1.len(),
                        r.c2.len(),
                        r.g.len()
                    ),
                });
            }
        }
        let (n_pde, n_bc) = (pde.len(), bc.len());
        let cat = |f: fn(&LinearResidual) -> &Vec<f64>| -> Vec<f64> {
            f(pde).iter().chain(f(bc)).copied().collect()
        };
        let host = LinearResidual {
            x: cat(|r| &r.x),
            c0: cat(|r| &r.c0),
            c1: cat(|r| &r.c1),
            c2: cat(|r| &r.c2),
            g: cat(|r| &r.g),
        };
        let mut host_w = vec![1.0 / n_pde as f64; n_pde];
        if n_bc > 0 {
            host_w.extend(std::iter::repeat_n(lambda / n_bc as f64, n_bc));
        }
        let col = |v: &[f64]| points_tensor(v, dtype, device);
        let packed = pack_constants(
            [&host.c0, &host.c1, &host.c2, &host.g, &host_w],
            dtype,
            device,
        )?;
        Ok(Self {
            x: col(&host.x)?,
            c0: col(&host.c0)?,
            c1: col(&host.c1)?,
            c2: col(&host.c2)?,
            g: col(&host.g)?,
            w: col(&host_w)?,
            n_pde,
            n_bc,
            lambda,
            dim: 1,
            host,
            host_2d: None,
            host_w,
            packed,
        })
    }

    /// Stacks 2-D `pde` and `bc` rows ([`LinearResidual2d`]) with the weights of eq. (7):
    /// (1/N_c) for PDE rows and λ/N_b for boundary rows, as in 1-D.
    pub fn new_2d(
        pde: &LinearResidual2d,
        bc: &LinearResidual2d,
        lambda: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        check_dtype(dtype)?;
        for (name, r) in [("pde rows", pde), ("boundary rows", bc)] {
            r.check().map_err(|e| ModelError::Shape {
                what: name.into(),
                expected: "one coefficient per point".into(),
                got: e.to_string(),
            })?;
        }
        // Reuse the 1-D checks and weights on a stand-in with the right lengths.
        let stand_in = |r: &LinearResidual2d| LinearResidual {
            x: vec![f64::NAN; r.len()],
            c0: r.c_u.clone(),
            c1: vec![f64::NAN; r.len()],
            c2: vec![f64::NAN; r.len()],
            g: r.rhs.clone(),
        };
        let mut set = Self::new(&stand_in(pde), &stand_in(bc), lambda, dtype, device)?;
        let all = pde.concat(bc);
        let n = all.len();
        let inter = |cols: [&Vec<f64>; 2]| -> Vec<f64> {
            (0..n).flat_map(|i| [cols[0][i], cols[1][i]]).collect()
        };
        let pts: Vec<f64> = all.points.iter().flatten().copied().collect();
        let tensor = |v: &[f64]| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, (n, 2), device)?.to_dtype(dtype)?)
        };
        set.x = tensor(&pts)?;
        set.c1 = tensor(&inter([&all.c_grad[0], &all.c_grad[1]]))?;
        set.c2 = tensor(&inter([&all.c_hess[0], &all.c_hess[1]]))?;
        set.dim = 2;
        set.host_2d = Some(all);
        Ok(set)
    }

    /// The same rows with other loss weights: the device column, the host copy and the packed
    /// constants of the fused op all change together (setting the public fields one by one
    /// would leave `packed` stale).
    pub fn with_weights(&self, w: Vec<f64>) -> Result<Self> {
        if w.len() != self.len() {
            return Err(ModelError::Shape {
                what: "loss weights".into(),
                expected: format!("{} rows", self.len()),
                got: format!("{} weights", w.len()),
            });
        }
        let (dtype, device) = (self.x.dtype(), self.x.device());
        let h = &self.host;
        let mut s = self.clone();
        s.packed = pack_constants([&h.c0, &h.c1, &h.c2, &h.g, &w], dtype, device)?;
        s.w = points_tensor(&w, dtype, device)?;
        s.host_w = w;
        Ok(s)
    }

    pub fn len(&self) -> usize {
        self.n_pde + self.n_bc
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// r = c2 u'' + c1 u' + c0 u − g, shape (N, 1), as plain candle ops: the reference the fused
    /// op is tested against, and what the NTK and Gauss–Newton code differentiate row by row.
    /// In d > 1 the (N, d) products are summed over the directions.
    pub fn residual(&self, jets: &Jets) -> Result<Tensor> {
        if self.dim != 1 {
            let r = ((&self.c2 * &jets.d2u)? + (&self.c1 * &jets.du)?)?.sum_keepdim(1)?;
            return Ok(((r + (&self.c0 * &jets.u)?)? - &self.g)?);
        }
        let r = ((&self.c2 * &jets.d2u)? + (&self.c1 * &jets.du)?)?;
        Ok(((r + (&self.c0 * &jets.u)?)? - &self.g)?)
    }

    /// The fused residual op (mspinn-kernels) on these rows: r, w½r² and per-tile partial sums in
    /// one pass, differentiable wrt the jets; one CUDA kernel on the GPU, the same arithmetic on
    /// the CPU. `outputs` picks the per-row outputs besides the partials.
    pub fn fused(&self, jets: &Jets, outputs: Outputs) -> Result<FusedResidual> {
        if self.dim != 1 {
            return Err(ModelError::Config {
                field: "engine",
                value: "fused residual".into(),
                reason: format!(
                    "the fused residual op is 1-D; this set is {}-D (use --engine cpu)",
                    self.dim
                ),
            });
        }
        let stacked = stack_jets(&jets.u, &jets.du, &jets.d2u)?;
        Ok(fused_residual(&stacked, &self.packed, self.n_pde, outputs)?)
    }
}
