//! Adam on the device: θ, m and v stay in the step's flat buffers and one kernel updates them
//! from the gradient the backward pass left there, so a training step moves only the loss
//! partials to the host. The constants are computed once per step on the host by
//! [`adam_constants`], which the host Adam also uses, so both round the same way.

use super::backend::{Backend, BufId, Kernel};
use super::step::{at, DeviceStep};
use crate::{LossTerms, Real, Result};

/// Adam's hyper-parameters: β1, β2 and ε̂.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamHyper {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamHyper {
    /// Kingma & Ba's defaults, which the paper uses: β = (0.9, 0.999), ε̂ = 1e-8.
    pub const PAPER: AdamHyper = AdamHyper {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
}

/// The update's constants at step `t` (1-based) in T's arithmetic:
/// [β1, β2, 1−β1, 1−β2, 1/(1−β1^t), 1/(1−β2^t), lr, ε̂] (the order of `AdamConsts` in
/// jets_common.cuh). The bias corrections are formed in f64 and rounded once.
pub fn adam_constants<T: Real>(h: AdamHyper, t: u64, lr: f64) -> [T; 8] {
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    [
        T::of(h.beta1),
        T::of(h.beta2),
        T::of(1.0 - h.beta1),
        T::of(1.0 - h.beta2),
        T::of(1.0 / (1.0 - h.beta1.powi(t))),
        T::of(1.0 / (1.0 - h.beta2.powi(t))),
        T::of(lr),
        T::of(h.eps),
    ]
}

impl<T: Real, B: Backend<T>> DeviceStep<T, B> {
    /// Loads Adam's moments (flat parameter order) onto the device, allocating them the first
    /// time.
    pub fn set_moments(&mut self, m: &[T], v: &[T]) -> Result<()> {
        let (mb, vb) = self.moment_buffers()?;
        self.backend.upload(at(mb), m)?;
        self.backend.upload(at(vb), v)
    }

    /// The moment buffers, allocated (zeroed) the first time.
    fn moment_buffers(&mut self) -> Result<(BufId, BufId)> {
        if let Some(mv) = self.moments {
            return Ok(mv);
        }
        let np = self.plan.n_params;
        let mv = (self.backend.alloc(np)?, self.backend.alloc(np)?);
        self.moments = Some(mv);
        Ok(mv)
    }

    /// Downloads Adam's moments (zeros if no moments were ever set).
    pub fn moments(&mut self, m: &mut [T], v: &mut [T]) -> Result<()> {
        match self.moments {
            Some((mb, vb)) => {
                self.backend.download(at(mb), m)?;
                self.backend.download(at(vb), v)
            }
            None => {
                m.fill(T::ZERO);
                v.fill(T::ZERO);
                Ok(())
            }
        }
    }

    /// One Adam step on the device: the loss and gradient at the device's θ, then θ, m, v
    /// updated in place with `consts` ([`adam_constants`]). Returns the loss terms at θ before
    /// the update (what the host loop logs for that iteration).
    pub fn adam_step_resident(&mut self, consts: [T; 8]) -> Result<LossTerms> {
        let (m, v) = self.moment_buffers()?;
        let terms = self.loss_and_grad_resident()?;
        self.backend.launch(&Kernel::Adam {
            theta: at(self.params),
            m: at(m),
            v: at(v),
            g: at(self.grad),
            len: self.plan.n_params,
            consts,
        })?;
        Ok(terms)
    }
}
