//! Per-sample Jacobians of the residual rows, ∂r_i/∂θ, from one batched reverse sweep over the
//! jets, as candle ops (the [`super::CandleEvaluator`]'s Jacobian; the CPU engine does the same
//! sweep tile by tile).
//!
//! This is mspinn's own contribution rather than a library call: autograd would need one backward
//! pass per row. For r = c2 u'' + c1 u' + c0 u − g the adjoints of the output layer's three
//! pre-activation streams are simply (c0, c1, c2), and each hidden layer maps stream adjoints
//! (ā, ā', ā'') of a = σ(z), a' = σ'(z) z', a'' = σ''(z) z'² + σ'(z) z'' back to
//!
//! ```text
//! z̄   = ā σ' + ā' σ'' z' + ā'' (σ''' z'² + σ'' z'')
//! z̄'  = ā' σ' + 2 ā'' σ'' z'
//! z̄'' = ā'' σ'
//! ```
//!
//! and to the layer input through W. The row of a weight block is Σ_s z̄^s ⊗ h^s (per-sample outer
//! products of stream adjoints and stream inputs), the bias row is z̄ (only the value stream carries
//! the bias). Every operation is a batched candle op, so the same code runs on any device.

use crate::{Mlp, Result};
use candle_core::Tensor;

/// The residual coefficients of a block of rows, each (n, 1), on the network's device and dtype.
pub struct RowCoefficients<'a> {
    pub c0: &'a Tensor,
    pub c1: &'a Tensor,
    pub c2: &'a Tensor,
}

/// J = ∂r/∂θ for rows at `x` (n × 1) with residual coefficients `c`: an (n × N_p) tensor whose
/// columns follow [`Mlp::vars`] order (W_0 row-major, b_0, W_1, b_1, …).
pub fn jacobian_rows(mlp: &Mlp, x: &Tensor, c: RowCoefficients<'_>) -> Result<Tensor> {
    let x = x.detach();
    let trace = mlp.trace(&x)?;
    let n = x.dim(0)?;
    let act = mlp.activation();
    let last = trace.layers.len() - 1;

    // Adjoints of the output layer's pre-activation streams (value, ', '').
    let mut zbar: [Tensor; 3] = [c.c0.clone(), c.c1.clone(), c.c2.clone()];
    let mut blocks: Vec<Tensor> = Vec::with_capacity(2 * (last + 1));
    for k in (0..=last).rev() {
        let layer = &trace.layers[k];
        let (out, inp) = mlp.weight(k).dims2()?;
        // Weight rows: Σ_s z̄^s ⊗ h^s, as an (n, out·in) block.
        let mut wrow: Option<Tensor> = None;
        for (zb, h) in zbar.iter().zip(&layer.input) {
            let outer = zb.unsqueeze(2)?.broadcast_mul(&h.detach().unsqueeze(1)?)?;
            wrow = Some(match wrow {
                None => outer,
                Some(acc) => (acc + outer)?,
            });
        }
        let wrow = wrow.expect("three streams").reshape((n, out * inp))?;
        blocks.push(zbar[0].clone());
        blocks.push(wrow);
        if k == 0 {
            break;
        }
        // Back through W_k to the adjoints of the previous layer's activation streams …
        let w = mlp.weight(k).as_tensor().detach();
        let abar: Vec<Tensor> = zbar
            .iter()
            .map(|z| z.matmul(&w))
            .collect::<candle_core::Result<_>>()?;
        // … and through that layer's activation jets to its pre-activation adjoints.
        let prev = &trace.layers[k - 1];
        let (z0, z1, z2) = (prev.z[0].detach(), prev.z[1].detach(), prev.z[2].detach());
        let d = act.derivs(&z0, true)?;
        let s3 = d.s3.expect("third derivative requested");
        let z1sq = z1.sqr()?;
        let t0 = (&abar[0] * &d.s1)?;
        let t1 = ((&abar[1] * &d.s2)? * &z1)?;
        let t2 = (&abar[2] * ((&s3 * &z1sq)? + (&d.s2 * &z2)?)?)?;
        let zb0 = ((t0 + t1)? + t2)?;
        let zb1 = ((&abar[1] * &d.s1)? + ((&abar[2] * &d.s2)? * &z1)?.affine(2.0, 0.0)?)?;
        let zb2 = (&abar[2] * &d.s1)?;
        zbar = [zb0, zb1, zb2];
    }
    // Blocks were produced output-first as (b_k, W_k); flat order is W_0, b_0, W_1, b_1, …
    blocks.reverse();
    Ok(Tensor::cat(&blocks, 1)?)
}
