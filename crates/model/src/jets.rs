//! Taylor-mode forward: u, u' = du/dx and u'' = d²u/dx² of the network in one sweep.
//!
//! For a hidden layer with weight W, bias b and activation σ the three streams obey
//!
//! ```text
//! z  = h W^T + b      z' = h' W^T      z'' = h'' W^T
//! a  = σ(z)           a' = σ'(z) z'    a'' = σ''(z) z'² + σ'(z) z''
//! ```
//!
//! starting from (x, 1, 0); the output layer is linear. The three streams of a layer are stacked
//! along the batch axis, so each layer costs one (3N × in)·(in × out) matmul. Everything is built
//! from candle ops, so autograd through it gives ∂(anything in u, u', u'')/∂θ.

use candle_core::{Tensor, D};

use crate::{Mlp, Result};

/// The value and the first two x-derivatives of the network at N points, each of shape (N, 1).
/// For an input x ∈ ℝ^d with d > 1, `du` holds ∂ₖu and `d2u` the pure ∂ₖₖu, each (N, d)
/// ([`Mlp::jets`]); the operator −∇·(a∇u) with scalar a needs no mixed derivatives.
#[derive(Clone, Debug)]
pub struct Jets {
    pub u: Tensor,
    pub du: Tensor,
    pub d2u: Tensor,
}

/// What a reverse sweep over one affine layer needs: the three input streams of the layer and
/// its three pre-activation streams. For layer 0 the input streams are (x, 1, 0).
#[derive(Clone, Debug)]
pub struct LayerTrace {
    pub input: [Tensor; 3],
    pub z: [Tensor; 3],
}

/// The forward pass with every layer's streams kept, for per-sample Jacobians.
#[derive(Clone, Debug)]
pub struct Trace {
    pub layers: Vec<LayerTrace>,
    pub jets: Jets,
}

impl Mlp {
    /// u, u', u'' at the points `x` of shape (N, 1); for a network on ℝ^d (d > 1), u, ∂ₖu and
    /// ∂ₖₖu at the points `x` of shape (N, d) (see [`Jets`]).
    pub fn jets(&self, x: &Tensor) -> Result<Jets> {
        if self.config().input_dim != 1 {
            return self.jets_nd(x);
        }
        self.run_jets(x, None)
    }

    /// The jets with every layer's streams recorded (detached from autograd is the caller's
    /// business: the trace holds the same tensors the graph does). 1-D networks only: the
    /// candle Jacobian sweep that reads it is the 1-D reference; the CPU engine does d > 1.
    pub fn trace(&self, x: &Tensor) -> Result<Trace> {
        if self.config().input_dim != 1 {
            return Err(crate::ModelError::Config {
                field: "engine",
                value: "candle".into(),
                reason: format!(
                    "the candle Jacobian sweep is 1-D only and this network takes x in R^{}; \
                     use --engine cpu",
                    self.config().input_dim
                ),
            });
        }
        let mut layers = Vec::with_capacity(self.num_layers());
        let jets = self.run_jets(x, Some(&mut layers))?;
        Ok(Trace { layers, jets })
    }

    fn run_jets(&self, x: &Tensor, mut record: Option<&mut Vec<LayerTrace>>) -> Result<Jets> {
        let n = x.dim(0)?;
        let last = self.num_layers() - 1;
        let act = self.activation();

        // Layer 0: the input streams are (x, 1, 0), so z' = W^T broadcast over the batch and z'' = 0.
        let w0t = self.weight(0).t()?;
        let z0 = x.matmul(&w0t)?.broadcast_add(self.bias(0).as_tensor())?;
        let width = z0.dim(D::Minus1)?;
        let z1 = w0t.broadcast_as((n, width))?.contiguous()?;
        let z2 = z0.zeros_like()?;
        if let Some(rec) = record.as_deref_mut() {
            rec.push(LayerTrace {
                input: [x.clone(), x.ones_like()?, x.zeros_like()?],
                z: [z0.clone(), z1.clone(), z2.clone()],
            });
        }
        let d = act.derivs(&z0, false)?;
        // Layer 0's z'' is zero, so a'' = σ''(z) z'².
        let mut h = [d.s0, (&d.s1 * &z1)?, (&d.s2 * z1.sqr()?)?];

        for k in 1..=last {
            let stacked = Tensor::cat(&[&h[0], &h[1], &h[2]], 0)?;
            let zs = stacked.matmul(&self.weight(k).t()?)?;
            let z0 = zs
                .narrow(0, 0, n)?
                .broadcast_add(self.bias(k).as_tensor())?;
            let z1 = zs.narrow(0, n, n)?;
            let z2 = zs.narrow(0, 2 * n, n)?;
            if let Some(rec) = record.as_deref_mut() {
                rec.push(LayerTrace {
                    input: h.clone(),
                    z: [z0.clone(), z1.clone(), z2.clone()],
                });
            }
            if k == last {
                return Ok(Jets {
                    u: z0,
                    du: z1,
                    d2u: z2,
                });
            }
            let d = act.derivs(&z0, false)?;
            let a2 = ((&d.s2 * z1.sqr()?)? + (&d.s1 * &z2)?)?;
            h = [d.s0, (&d.s1 * &z1)?, a2];
        }
        unreachable!("an Mlp always has an output layer")
    }

    /// The d-dimensional jets as candle ops: 1 + 2d streams (value, ∂ₖ, ∂ₖₖ for each
    /// direction k) stacked along the batch axis, each layer one ((1 + 2d)N × in)·(in × out)
    /// matmul; layer 0's input streams are (x, eₖ, 0), so z'ₖ = W₀[:, k] and z''ₖ = 0. Built
    /// from differentiable candle ops: candle's autograd through it is the brute-force
    /// reference for the CPU engine's hand-written reverse pass in d dimensions.
    fn jets_nd(&self, x: &Tensor) -> Result<Jets> {
        let (n, d) = x.dims2()?;
        let last = self.num_layers() - 1;
        let act = self.activation();
        let w0 = self.weight(0).as_tensor();
        let z0 = x
            .matmul(&w0.t()?)?
            .broadcast_add(self.bias(0).as_tensor())?;
        let width = z0.dim(D::Minus1)?;
        let s = act.derivs(&z0, false)?;
        let mut h = vec![s.s0.clone()];
        let mut firsts = Vec::with_capacity(d);
        let mut seconds = Vec::with_capacity(d);
        for k in 0..d {
            // z'ₖ = W₀[:, k] for every row; z''ₖ = 0, so a''ₖ = σ''(z) z'ₖ².
            let zk = w0.narrow(1, k, 1)?.t()?.broadcast_as((n, width))?;
            firsts.push(s.s1.broadcast_mul(&zk)?);
            seconds.push(s.s2.broadcast_mul(&zk.sqr()?)?);
        }
        h.extend(firsts);
        h.extend(seconds);
        for l in 1..=last {
            let stacked = Tensor::cat(&h.iter().collect::<Vec<_>>(), 0)?;
            let zs = stacked.matmul(&self.weight(l).t()?)?;
            let z0 = zs
                .narrow(0, 0, n)?
                .broadcast_add(self.bias(l).as_tensor())?;
            let z1: Vec<Tensor> = (0..d)
                .map(|k| zs.narrow(0, (1 + k) * n, n))
                .collect::<candle_core::Result<_>>()?;
            let z2: Vec<Tensor> = (0..d)
                .map(|k| zs.narrow(0, (1 + d + k) * n, n))
                .collect::<candle_core::Result<_>>()?;
            if l == last {
                return Ok(Jets {
                    u: z0,
                    du: Tensor::cat(&z1, 1)?,
                    d2u: Tensor::cat(&z2, 1)?,
                });
            }
            let s = act.derivs(&z0, false)?;
            let mut next = vec![s.s0.clone()];
            for z1k in &z1 {
                next.push((&s.s1 * z1k)?);
            }
            for (z1k, z2k) in z1.iter().zip(&z2) {
                next.push(((&s.s2 * z1k.sqr()?)? + (&s.s1 * z2k)?)?);
            }
            h = next;
        }
        unreachable!("an Mlp always has an output layer")
    }
}
