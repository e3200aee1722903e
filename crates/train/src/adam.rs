//! Adam (Kingma & Ba), β = (0.9, 0.999), ε̂ = 1e-8.
//!
//! Written here rather than taken from candle-nn's AdamW because a resumable run must save and
//! restore the moment estimates and the step count, which candle-nn keeps private. The arithmetic
//! is candle-nn's AdamW with zero weight decay, operation for operation.
//!
//! On the CPU the moments live in host vectors and the update runs in place on the variables'
//! storage (one loop per variable, no tensors allocated): with the CPU engine computing the
//! gradient in a flat host buffer ([`Adam::step_flat`]), the candle per-op overhead of ~50 small
//! tensor ops per step would otherwise be a sizeable part of a step at small N_c. Elsewhere the
//! moments are tensors and the update is candle ops. [`Adam::step_with`] takes the gradient in
//! whichever form the evaluator produced it ([`Gradient`]).

use candle_core::{DType, Device, Tensor, Var};
use mspinn_model::device::{adam_constants, AdamHyper};
use mspinn_model::{update_var_in_place, FlatGrad, Gradient, Real};

use crate::Result;

pub const BETA1: f64 = AdamHyper::PAPER.beta1;
pub const BETA2: f64 = AdamHyper::PAPER.beta2;
pub const EPS: f64 = AdamHyper::PAPER.eps;

/// Moments m, v per variable and the step count t.
#[derive(Clone, Debug)]
pub struct AdamState {
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    pub t: u64,
}

enum Moments {
    Tensors { m: Vec<Tensor>, v: Vec<Tensor> },
    F32 { m: Vec<f32>, v: Vec<f32> },
    F64 { m: Vec<f64>, v: Vec<f64> },
}

pub struct Adam {
    vars: Vec<Var>,
    moments: Moments,
    t: u64,
}

fn host_kind(vars: &[Var]) -> Option<DType> {
    let dt = vars.first()?.dtype();
    let ok = vars
        .iter()
        .all(|v| v.device().is_cpu() && v.dtype() == dt && v.as_tensor().is_contiguous());
    (ok && matches!(dt, DType::F32 | DType::F64)).then_some(dt)
}

fn host_vec<T: Real>(ts: &[Tensor]) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for t in ts {
        out.extend(
            t.flatten_all()?
                .to_dtype(<T as candle_core::WithDType>::DTYPE)?
                .to_vec1::<T>()?,
        );
    }
    Ok(out)
}

fn tensors<T: Real>(flat: &[T], vars: &[Var]) -> Result<Vec<Tensor>> {
    let mut off = 0;
    let mut out = Vec::with_capacity(vars.len());
    for v in vars {
        let n = v.elem_count();
        out.push(Tensor::from_slice(
            &flat[off..off + n],
            v.shape(),
            &Device::Cpu,
        )?);
        off += n;
    }
    Ok(out)
}

/// θ ← θ − lr · m̂ / (√v̂ + ε̂) over every variable, in place, in T's arithmetic.
fn host_step<T: Real + num_like::Sqrt>(
    vars: &[Var],
    m: &mut [T],
    v: &mut [T],
    g: &[T],
    t: u64,
    lr: f64,
) -> Result<()> {
    // The constants the device Adam uses too (one rounding of each).
    let [b1, b2, ob1, ob2, scale_m, scale_v, lr, eps] =
        adam_constants::<T>(AdamHyper::PAPER, t, lr);
    let mut off = 0;
    for var in vars {
        let n = var.elem_count();
        let (m, v, g) = (&mut m[off..off + n], &mut v[off..off + n], &g[off..off + n]);
        update_var_in_place::<T>(var, &mut |theta: &mut [T]| {
            for i in 0..theta.len() {
                let gi = g[i];
                let mi = m[i] * b1 + gi * ob1;
                let vi = v[i] * b2 + gi * gi * ob2;
                m[i] = mi;
                v[i] = vi;
                theta[i] -= (mi * scale_m * lr) / ((vi * scale_v).sqrt_() + eps);
            }
        })?;
        off += n;
    }
    Ok(())
}

mod num_like {
    pub trait Sqrt {
        fn sqrt_(self) -> Self;
    }
    impl Sqrt for f32 {
        fn sqrt_(self) -> Self {
            self.sqrt()
        }
    }
    impl Sqrt for f64 {
        fn sqrt_(self) -> Self {
            self.sqrt()
        }
    }
}

impl Adam {
    pub fn new(vars: Vec<Var>) -> Result<Self> {
        let n: usize = vars.iter().map(|v| v.elem_count()).sum();
        let moments = match host_kind(&vars) {
            Some(DType::F32) => Moments::F32 {
                m: vec![0.0; n],
                v: vec![0.0; n],
            },
            Some(_) => Moments::F64 {
                m: vec![0.0; n],
                v: vec![0.0; n],
            },
            None => {
                let m = vars
                    .iter()
                    .map(|v| v.as_tensor().zeros_like())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Moments::Tensors { v: m.clone(), m }
            }
        };
        Ok(Self {
            vars,
            moments,
            t: 0,
        })
    }

    /// Adam whose moments are tensors on the variables' device and whose update is candle ops:
    /// what runs for variables off the CPU. On the CPU it exists for the tests that hold that
    /// path (the one a GPU runs) to the host path.
    pub fn with_tensor_moments(vars: Vec<Var>) -> Result<Self> {
        let m = vars
            .iter()
            .map(|v| v.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            moments: Moments::Tensors { v: m.clone(), m },
            t: 0,
        })
    }

    pub fn with_state(vars: Vec<Var>, state: AdamState) -> Result<Self> {
        let moments = match host_kind(&vars) {
            Some(DType::F32) => Moments::F32 {
                m: host_vec(&state.m)?,
                v: host_vec(&state.v)?,
            },
            Some(_) => Moments::F64 {
                m: host_vec(&state.m)?,
                v: host_vec(&state.v)?,
            },
            None => Moments::Tensors {
                m: state.m,
                v: state.v,
            },
        };
        Ok(Self {
            vars,
            moments,
            t: state.t,
        })
    }

    /// The moments as tensors (on the variables' device) and the step count, for checkpoints.
    pub fn state(&self) -> Result<AdamState> {
        let (m, v) = match &self.moments {
            Moments::Tensors { m, v } => (m.clone(), v.clone()),
            Moments::F32 { m, v } => (tensors(m, &self.vars)?, tensors(v, &self.vars)?),
            Moments::F64 { m, v } => (tensors(m, &self.vars)?, tensors(v, &self.vars)?),
        };
        Ok(AdamState { m, v, t: self.t })
    }

    /// Adam at step count `t` with moments given flat (f64, flat parameter order): what a
    /// resident (device) Adam hands back to the trainer for checkpoints.
    pub fn from_flat(vars: Vec<Var>, m: &[f64], v: &[f64], t: u64) -> Result<Self> {
        let as_tensors = |flat: &[f64]| -> Result<Vec<Tensor>> {
            let mut off = 0;
            let mut out = Vec::with_capacity(vars.len());
            for var in &vars {
                let n = var.elem_count();
                out.push(
                    Tensor::from_slice(&flat[off..off + n], var.shape(), var.device())?
                        .to_dtype(var.dtype())?,
                );
                off += n;
            }
            Ok(out)
        };
        let n: usize = vars.iter().map(|v| v.elem_count()).sum();
        if m.len() != n || v.len() != n {
            return Err(crate::TrainError::Option {
                field: "adam moments",
                value: format!("{} and {} values", m.len(), v.len()),
                reason: format!("the network has {n} parameters"),
            });
        }
        let state = AdamState {
            m: as_tensors(m)?,
            v: as_tensors(v)?,
            t,
        };
        Self::with_state(vars, state)
    }

    /// The moments as flat f64 vectors (flat parameter order).
    pub fn flat_moments(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let flat = |ts: &[Tensor]| -> Result<Vec<f64>> { host_vec::<f64>(ts) };
        Ok(match &self.moments {
            Moments::Tensors { m, v } => (flat(m)?, flat(v)?),
            Moments::F32 { m, v } => (
                m.iter().map(|&x| f64::from(x)).collect(),
                v.iter().map(|&x| f64::from(x)).collect(),
            ),
            Moments::F64 { m, v } => (m.clone(), v.clone()),
        })
    }

    /// The step count t.
    pub fn t(&self) -> u64 {
        self.t
    }

    /// One update θ ← θ − lr · m̂ / (√v̂ + ε̂) with the gradients in `vars` order.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        match &self.moments {
            Moments::Tensors { .. } => {}
            Moments::F32 { .. } => return self.step_flat(&FlatGrad::F32(host_vec(grads)?), lr),
            Moments::F64 { .. } => return self.step_flat(&FlatGrad::F64(host_vec(grads)?), lr),
        }
        let Moments::Tensors { m: ms, v: vs } = &mut self.moments else {
            unreachable!()
        };
        self.t += 1;
        let t = self.t as i32;
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        for (k, (var, g)) in self.vars.iter().zip(grads).enumerate() {
            let m = ((&ms[k] * BETA1)? + (g * (1.0 - BETA1))?)?;
            let v = ((&vs[k] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let m_hat = (&m * scale_m)?;
            let v_hat = (&v * scale_v)?;
            let next = (var.as_tensor() - ((m_hat * lr)? / (v_hat.sqrt()? + EPS)?)?)?;
            var.set(&next)?;
            ms[k] = m;
            vs[k] = v;
        }
        Ok(())
    }

    /// One step with a gradient from [`mspinn_model::Evaluator::loss_and_grad`].
    pub fn step_with(&mut self, grad: &Gradient, lr: f64) -> Result<()> {
        match grad {
            Gradient::Device(g) => self.step(g, lr),
            Gradient::Host(g) => self.step_flat(g, lr),
        }
    }

    /// The same update from a flat gradient (the CPU engine's), without tensors on the CPU.
    pub fn step_flat(&mut self, grad: &FlatGrad, lr: f64) -> Result<()> {
        match (&mut self.moments, grad) {
            (Moments::F32 { m, v }, FlatGrad::F32(g)) => {
                self.t += 1;
                host_step(&self.vars, m, v, g, self.t, lr)
            }
            (Moments::F64 { m, v }, FlatGrad::F64(g)) => {
                self.t += 1;
                host_step(&self.vars, m, v, g, self.t, lr)
            }
            _ => {
                let g = grad.to_f64();
                let dt = self.vars[0].dtype();
                let dev = self.vars[0].device().clone();
                let mut off = 0;
                let mut ts = Vec::with_capacity(self.vars.len());
                for var in &self.vars {
                    let n = var.elem_count();
                    ts.push(Tensor::from_slice(&g[off..off + n], var.shape(), &dev)?.to_dtype(dt)?);
                    off += n;
                }
                self.step(&ts, lr)
            }
        }
    }
}
