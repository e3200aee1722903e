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
use mspinn_problem::LinearResidual;

use crate::mlp::{check_dtype, points_tensor};
use crate::{Jets, ModelError, Result};

#[derive(Clone, Debug)]
pub struct ResidualSet {
    /// Points, (N, 1): the n_pde PDE rows first, then the n_bc boundary rows.
    pub x: Tensor,
    pub c0: Tensor,
    pub c1: Tensor,
    pub c2: Tensor,
    pub g: Tensor,
    /// Loss weights w_i, (N, 1).
    pub w: Tensor,
    pub n_pde: usize,
    pub n_bc: usize,
    pub lambda: f64,
    /// The same rows on the host, in f64, for the NTK and diagnostics.
    pub host: LinearResidual,
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
            host,
            host_w,
            packed,
        })
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
    pub fn residual(&self, jets: &Jets) -> Result<Tensor> {
        let r = ((&self.c2 * &jets.d2u)? + (&self.c1 * &jets.du)?)?;
        Ok(((r + (&self.c0 * &jets.u)?)? - &self.g)?)
    }

    /// The fused residual op (mspinn-kernels) on these rows: r, w½r² and per-tile partial sums in
    /// one pass, differentiable wrt the jets; one CUDA kernel on the GPU, the same arithmetic on
    /// the CPU. `outputs` picks the per-row outputs besides the partials.
    pub fn fused(&self, jets: &Jets, outputs: Outputs) -> Result<FusedResidual> {
        let stacked = stack_jets(&jets.u, &jets.du, &jets.d2u)?;
        Ok(fused_residual(&stacked, &self.packed, self.n_pde, outputs)?)
    }
}
