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
    /// u, u', u'' at the points `x` of shape (N, 1).
    pub fn jets(&self, x: &Tensor) -> Result<Jets> {
        self.run_jets(x, None)
    }

    /// The jets with every layer's streams recorded (detached from autograd is the caller's
    /// business: the trace holds the same tensors the graph does).
    pub fn trace(&self, x: &Tensor) -> Result<Trace> {
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
}
