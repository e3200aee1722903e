//! Adam (Kingma & Ba), β = (0.9, 0.999), ε̂ = 1e-8.
//!
//! Written here rather than taken from candle-nn's AdamW because a resumable run must save and
//! restore the moment estimates and the step count, which candle-nn keeps private. The arithmetic
//! is candle-nn's AdamW with zero weight decay, operation for operation.

use candle_core::{Tensor, Var};

use crate::Result;

pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f64 = 1e-8;

/// Moments m, v per variable and the step count t.
#[derive(Clone, Debug)]
pub struct AdamState {
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    pub t: u64,
}

pub struct Adam {
    vars: Vec<Var>,
    state: AdamState,
}

impl Adam {
    pub fn new(vars: Vec<Var>) -> Result<Self> {
        let m = vars
            .iter()
            .map(|v| v.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let state = AdamState {
            v: m.clone(),
            m,
            t: 0,
        };
        Ok(Self { vars, state })
    }

    pub fn with_state(vars: Vec<Var>, state: AdamState) -> Self {
        Self { vars, state }
    }

    pub fn state(&self) -> &AdamState {
        &self.state
    }

    /// One update θ ← θ − lr · m̂ / (√v̂ + ε̂) with the gradients in `vars` order.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        self.state.t += 1;
        let t = self.state.t as i32;
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        for (k, (var, g)) in self.vars.iter().zip(grads).enumerate() {
            let m = ((&self.state.m[k] * BETA1)? + (g * (1.0 - BETA1))?)?;
            let v = ((&self.state.v[k] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let m_hat = (&m * scale_m)?;
            let v_hat = (&v * scale_v)?;
            let next = (var.as_tensor() - ((m_hat * lr)? / (v_hat.sqrt()? + EPS)?)?)?;
            var.set(&next)?;
            self.state.m[k] = m;
            self.state.v[k] = v;
        }
        Ok(())
    }
}
