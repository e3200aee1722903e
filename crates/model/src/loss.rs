//! The PINN loss of eq. (7), L(θ) = (1/N_c) Σ ½ r_i² + (λ/N_b) Σ ½ r_b,j², and its gradient.

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

/// The loss terms and ∂L/∂θ for every variable in [`Mlp::vars`] order.
pub struct LossWithGrad {
    pub terms: LossTerms,
    pub grads: Vec<Tensor>,
}

impl LossWithGrad {
    /// The gradient as one f64 vector in flat-parameter order.
    pub fn flat_grad(&self) -> Result<Vec<f64>> {
        let mut out = Vec::new();
        for g in &self.grads {
            out.extend(g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        }
        Ok(out)
    }
}

impl Mlp {
    /// Per-row weighted half-squares w_i ½ r_i², shape (N, 1), and the residual itself, from the
    /// fused residual op.
    pub fn weighted_half_squares(&self, set: &ResidualSet) -> Result<(Tensor, Tensor)> {
        let jets = self.jets(&set.x)?;
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

    /// Just the loss terms. On the CPU through [`crate::cpu_engine`], elsewhere (or with the
    /// engine disabled) as [`Mlp::loss_autograd`].
    pub fn loss(&self, set: &ResidualSet) -> Result<LossTerms> {
        // --- CPU engine dispatch ---
        if let Some(terms) = crate::cpu_engine::loss(self, set)? {
            return Ok(terms);
        }
        self.loss_autograd(set)
    }

    /// The loss terms and ∂L/∂θ. On the CPU through [`crate::cpu_engine`], elsewhere (or with
    /// the engine disabled) as [`Mlp::loss_and_grad_autograd`].
    pub fn loss_and_grad(&self, set: &ResidualSet) -> Result<LossWithGrad> {
        // --- CPU engine dispatch ---
        if let Some(lg) = crate::cpu_engine::loss_and_grad(self, set)? {
            return Ok(lg);
        }
        self.loss_and_grad_autograd(set)
    }

    /// The loss terms from candle ops over the jets (the reference for the CPU engine).
    pub fn loss_autograd(&self, set: &ResidualSet) -> Result<LossTerms> {
        Ok(self.loss_tensor(set)?.1)
    }

    /// The loss terms and the gradient by candle's first-order autograd over the jet graph.
    pub fn loss_and_grad_autograd(&self, set: &ResidualSet) -> Result<LossWithGrad> {
        let (total, terms) = self.loss_tensor(set)?;
        let mut store = total.backward()?;
        let grads = self
            .vars()
            .iter()
            .map(|v| match store.remove(v.as_tensor()) {
                Some(g) => Ok(g),
                // A parameter the loss does not touch (e.g. the output bias when only u'' enters)
                // has a zero gradient, not a missing one.
                None => Ok(v.as_tensor().zeros_like()?),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LossWithGrad { terms, grads })
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
