//! The PINN loss of eq. (7), L(θ) = (1/N_c) Σ ½ r_i² + (λ/N_b) Σ ½ r_b,j², as candle tensors
//! (what the candle evaluator differentiates); the CPU engine computes the same sums by hand.

use candle_core::{DType, Tensor};
use mspinn_kernels::Outputs;

use crate::{Mlp, ResidualSet, Result};

/// The loss split into its PDE and boundary parts, in f64.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossTerms {
    pub total: f64,
    pub pde: f64,
    pub bc: f64,
}

impl LossTerms {
    pub fn is_finite(&self) -> bool {
        self.total.is_finite() && self.pde.is_finite() && self.bc.is_finite()
    }
    /// Which term went non-finite first (for the divergence error).
    pub fn offending_term(&self) -> &'static str {
        if !self.pde.is_finite() {
            "loss_pde"
        } else if !self.bc.is_finite() {
            "loss_bc"
        } else {
            "loss"
        }
    }
}

impl Mlp {
    /// Per-row weighted half-squares w_i ½ r_i², shape (N, 1), and the residual itself, from the
    /// fused residual op.
    pub fn weighted_half_squares(&self, set: &ResidualSet) -> Result<(Tensor, Tensor)> {
        let jets = self.jets(&set.x)?;
        if set.dim != 1 {
            // The fused op is 1-D: the plain candle expression in d dimensions.
            let r = set.residual(&jets)?;
            let e = (r.sqr()? * &set.w)?.affine(0.5, 0.0)?;
            return Ok((e, r));
        }
        let f = set.fused(&jets, Outputs::ALL)?;
        match (f.half_squares, f.residual) {
            (Some(e), Some(r)) => Ok((e, r)),
            _ => unreachable!("Outputs::ALL asks for both columns"),
        }
    }

    /// The loss as a scalar tensor (attached to the autograd graph) plus its two parts.
    ///
    /// Computed by the fused residual op (mspinn-kernels): one pass writes the per-tile sums of
    /// w½r², PDE and boundary tiles apart, and its fused backward feeds dL/du, dL/du', dL/du''
    /// into candle's autograd over the jets. Same code path on CPU and CUDA.
    pub fn loss_tensor(&self, set: &ResidualSet) -> Result<(Tensor, LossTerms)> {
        if set.dim != 1 {
            return self.loss_tensor_unfused(set);
        }
        let jets = self.jets(&set.x)?;
        let f = set.fused(&jets, Outputs::LOSS)?;
        let pde = f.pde_loss()?;
        let bc = f.bc_loss()?;
        finish_terms(pde, bc)
    }

    /// [`Self::loss_tensor`] by the unfused candle expression (eight elementwise ops and two
    /// sums): the reference for tests and the baseline for timing the fused op.
    pub fn loss_tensor_unfused(&self, set: &ResidualSet) -> Result<(Tensor, LossTerms)> {
        let jets = self.jets(&set.x)?;
        let r = set.residual(&jets)?;
        let e = (r.sqr()? * &set.w)?.affine(0.5, 0.0)?;
        let pde = e.narrow(0, 0, set.n_pde)?.sum_all()?;
        let bc = if set.n_bc > 0 {
            Some(e.narrow(0, set.n_pde, set.n_bc)?.sum_all()?)
        } else {
            None
        };
        finish_terms(pde, bc)
    }
}

/// total = pde + bc (as tensors, for autograd) and the three values on the host.
fn finish_terms(pde: Tensor, bc: Option<Tensor>) -> Result<(Tensor, LossTerms)> {
    let (total, bc_value) = match bc {
        Some(bc) => {
            let bcv = scalar(&bc)?;
            ((&pde + bc)?, bcv)
        }
        None => (pde.clone(), 0.0),
    };
    let terms = LossTerms {
        total: scalar(&total)?,
        pde: scalar(&pde)?,
        bc: bc_value,
    };
    Ok((total, terms))
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}
