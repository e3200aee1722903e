//! [`Evaluator`] through the GPU engine's step ([`crate::device::DeviceStep`]) on any
//! [`Backend`]: the CUDA backend on a GPU (`--engine gpu`), or the host backend (`--engine
//! gpu-host`), which runs the very same sequence of gemms and kernels on the CPU so that every
//! consumer of the seam (trainer, LM, NTK) is exercised through the GPU engine in CI.
//!
//! The rows live on the device between calls: a call re-uploads them only when they differ from
//! the cached ones (compared by value, O(N) against the step's O(N·width²)). θ is uploaded from
//! the network at every call, except in the resident Adam loop ([`ResidentAdam`]), where θ and
//! the moments stay on the device and the network is written only when the trainer reads it.

use std::ops::Range;

use candle_core::{DType, Device, Tensor};

use super::{check_rows, Engine, Evaluator, Gradient, ResidentAdam, Shape};
use crate::device::{adam_constants, max_rows, AdamHyper, Backend, DeviceStep, StepPlan};
use crate::{FlatGrad, LossTerms, Mlp, ModelError, Real, ResidualSet, Result};

/// A backend factory: a fresh backend for each step the evaluator allocates.
pub type MakeBackend<B> = Box<dyn FnMut() -> B + Send>;

/// Rows as the step reads them: x (n), constants (5, n) = (c0, c1, c2, g, w), PDE row count.
#[derive(Clone, Debug, PartialEq)]
struct Rows<T> {
    x: Vec<T>,
    consts: Vec<T>,
    n_pde: usize,
}

impl<T: Real> Rows<T> {
    fn of(set: &ResidualSet, rows: Range<usize>) -> Self {
        let h = &set.host;
        let cut = |v: &[f64]| -> Vec<T> { v[rows.clone()].iter().map(|&a| T::of(a)).collect() };
        let x = cut(&h.x);
        let consts = [&h.c0, &h.c1, &h.c2, &h.g, &set.host_w]
            .into_iter()
            .flat_map(|c| cut(c))
            .collect();
        let n_pde = set.n_pde.clamp(rows.start, rows.end) - rows.start;
        Self { x, consts, n_pde }
    }
}

/// ∂L/∂θ in the flat form the host optimisers take (exact: T is f32 or f64).
fn flat_grad<T: Real>(g: &[T]) -> FlatGrad {
    if <T as candle_core::WithDType>::DTYPE == DType::F32 {
        FlatGrad::F32(g.iter().map(|v| v.to_f64() as f32).collect())
    } else {
        FlatGrad::F64(g.iter().map(|v| v.to_f64()).collect())
    }
}

fn lost_step() -> ModelError {
    ModelError::Config {
        field: "engine",
        value: "gpu".into(),
        reason: "internal: the device step was not allocated".into(),
    }
}

/// The GPU engine behind the seam.
pub struct DeviceEvaluator<T: Real, B: Backend<T>> {
    engine: Engine,
    shape: Shape,
    device: Device,
    make: MakeBackend<B>,
    /// The whole set's step (loss, gradient, residuals, Adam) and the rows it holds.
    full: Option<(Rows<T>, DeviceStep<T, B>)>,
    /// The Jacobian's step, reloaded chunk by chunk.
    chunk: Option<DeviceStep<T, B>>,
    hyper: AdamHyper,
    adam_t: u64,
}

impl<T: Real, B: Backend<T>> DeviceEvaluator<T, B> {
    /// For networks shaped like `mlp` (tanh, f32 or f64 matching T), on `mlp`'s device, which
    /// `make` must produce backends for.
    pub fn new(engine: Engine, mlp: &Mlp, make: MakeBackend<B>) -> Result<Self> {
        if mlp.dtype() != <T as candle_core::WithDType>::DTYPE {
            return Err(ModelError::DType(mlp.dtype()));
        }
        if mlp.activation() != crate::Activation::Tanh {
            return Err(ModelError::Config {
                field: "activation",
                value: mlp.activation().name().into(),
                reason: format!("the {engine} engine's kernels are tanh's (use --engine cpu)"),
            });
        }
        if mlp.config().input_dim != 1 {
            return Err(ModelError::Config {
                field: "engine",
                value: engine.name().into(),
                reason: format!("the {engine} engine is 1-D only (use --engine cpu for d > 1)"),
            });
        }
        Ok(Self {
            engine,
            shape: Shape::of(mlp),
            device: mlp.device().clone(),
            make,
            full: None,
            chunk: None,
            hyper: AdamHyper::PAPER,
            adam_t: 0,
        })
    }

    /// Refuses, before allocating, a step (and with `jacobian` its n × N_p Jacobian) that the
    /// device's free memory cannot hold, naming the most rows that would fit.
    fn check_fits(&self, backend: &B, plan: &StepPlan, jacobian: bool) -> Result<()> {
        let Some(free) = backend.free_bytes() else {
            return Ok(());
        };
        let size = std::mem::size_of::<T>();
        let jac = if jacobian {
            (plan.n as u128) * (plan.n_params as u128) * size as u128
        } else {
            0
        };
        let need = plan.bytes(size).map(|b| b + jac);
        if need.is_some_and(|b| b <= free) {
            return Ok(());
        }
        let most = max_rows(&plan.dims, free, size, jacobian);
        Err(ModelError::Shape {
            what: format!(
                "rows for the {} engine{} ({} MB free on the device)",
                self.engine,
                if jacobian { "'s Jacobian" } else { "" },
                free >> 20
            ),
            expected: format!("at most {most} rows for this network and dtype"),
            got: format!("{} rows", plan.n),
        })
    }

    /// θ of `mlp` in T (the network checked against the one the evaluator was built for).
    fn theta_of(&self, mlp: &Mlp) -> Result<Vec<T>> {
        self.shape.check(mlp)?;
        Ok(mlp.flat_params()?.into_iter().map(|v| T::of(v)).collect())
    }

    /// The whole set's step, with the rows uploaded if they changed.
    fn full_step(&mut self, set: &ResidualSet) -> Result<&mut DeviceStep<T, B>> {
        let rows = Rows::of(set, 0..set.len());
        if self.full.as_ref().is_none_or(|(held, _)| *held != rows) {
            self.full = None;
            let plan = StepPlan::new(&self.shape.dims, rows.x.len(), rows.n_pde);
            let backend = (self.make)();
            self.check_fits(&backend, &plan, false)?;
            let step = DeviceStep::new(backend, plan, &rows.x, &rows.consts)?;
            self.full = Some((rows, step));
        }
        self.full.as_mut().map(|(_, s)| s).ok_or_else(lost_step)
    }

    /// The step at θ of `mlp` on the whole set.
    fn full_at(&mut self, mlp: &Mlp, set: &ResidualSet) -> Result<&mut DeviceStep<T, B>> {
        let theta = self.theta_of(mlp)?;
        let step = self.full_step(set)?;
        step.set_params(&theta)?;
        Ok(step)
    }

    /// J of `rows` as a row-major (len × N_p) tensor on the network's device, dtype T.
    fn jacobian_tensor(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        rows: Range<usize>,
    ) -> Result<Tensor> {
        check_rows(set, &rows)?;
        let theta = self.theta_of(mlp)?;
        let part = Rows::<T>::of(set, rows.clone());
        let n = rows.len();
        let np = theta.len();
        if n == 0 {
            return Ok(Tensor::zeros(
                (0, np),
                <T as candle_core::WithDType>::DTYPE,
                &self.device,
            )?);
        }
        let fits = self.chunk.as_ref().is_some_and(|c| c.capacity() >= n);
        if !fits {
            self.chunk = None;
            let plan = StepPlan::new(&self.shape.dims, n, part.n_pde);
            let backend = (self.make)();
            self.check_fits(&backend, &plan, true)?;
            self.chunk = Some(DeviceStep::new(backend, plan, &part.x, &part.consts)?);
        }
        let step = self.chunk.as_mut().ok_or_else(lost_step)?;
        step.reload(&part.x, &part.consts, part.n_pde)?;
        step.set_params(&theta)?;
        let buf = step.jacobian_resident()?;
        step.backend().hand_to_candle(buf, n, np)
    }
}

impl<T: Real, B: Backend<T> + Send> Evaluator for DeviceEvaluator<T, B> {
    fn engine(&self) -> Engine {
        self.engine
    }

    fn loss(&mut self, mlp: &Mlp, set: &ResidualSet) -> Result<LossTerms> {
        self.full_at(mlp, set)?.loss_resident()
    }

    fn loss_and_grad(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        grad: &mut Gradient,
    ) -> Result<LossTerms> {
        let np = mlp.num_params();
        let step = self.full_at(mlp, set)?;
        let terms = step.loss_and_grad_resident()?;
        let mut g = vec![T::ZERO; np];
        step.download_grad(&mut g)?;
        *grad = Gradient::Host(flat_grad(&g));
        Ok(terms)
    }

    fn residuals(&mut self, mlp: &Mlp, set: &ResidualSet, out: &mut Vec<f64>) -> Result<LossTerms> {
        let mut r = Vec::new();
        let terms = self.full_at(mlp, set)?.residuals_resident(&mut r)?;
        out.clear();
        out.extend(r.iter().map(|v| v.to_f64()));
        Ok(terms)
    }

    fn jacobian(&mut self, mlp: &Mlp, set: &ResidualSet, rows: Range<usize>) -> Result<Tensor> {
        self.jacobian_tensor(mlp, set, rows)
    }

    fn jacobian_f64(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        rows: Range<usize>,
        out: &mut Vec<f64>,
    ) -> Result<()> {
        let j = self.jacobian_tensor(mlp, set, rows)?;
        *out = j.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        Ok(())
    }

    fn resident_adam(&mut self) -> Option<&mut dyn ResidentAdam> {
        Some(self)
    }
}

impl<T: Real, B: Backend<T> + Send> ResidentAdam for DeviceEvaluator<T, B> {
    fn load(&mut self, mlp: &Mlp, set: &ResidualSet, m: &[f64], v: &[f64], t: u64) -> Result<()> {
        let np = mlp.num_params();
        let cast = |a: &[f64]| -> Vec<T> {
            if a.is_empty() {
                vec![T::ZERO; np]
            } else {
                a.iter().map(|&x| T::of(x)).collect()
            }
        };
        let (m, v) = (cast(m), cast(v));
        let step = self.full_at(mlp, set)?;
        step.set_moments(&m, &v)?;
        self.adam_t = t;
        Ok(())
    }

    /// The rows were compared and uploaded by [`ResidentAdam::load`]; a step only checks their
    /// counts, so the hot loop does no O(N) host work (rebuilding and comparing the rows would
    /// cost more than the device step itself at N_c = 10⁶).
    fn step(&mut self, set: &ResidualSet, lr: f64) -> Result<LossTerms> {
        let consts = adam_constants::<T>(self.hyper, self.adam_t + 1, lr);
        let step = match self.full.as_mut() {
            Some((rows, step)) if rows.x.len() == set.len() && rows.n_pde == set.n_pde => step,
            _ => {
                return Err(ModelError::Config {
                    field: "adam",
                    value: "step".into(),
                    reason: "the rows differ from those the resident Adam was loaded with \
                             (load it again for a new set)"
                        .into(),
                })
            }
        };
        let terms = step.adam_step_resident(consts)?;
        self.adam_t += 1;
        Ok(terms)
    }

    fn store(&mut self, mlp: &Mlp, m: &mut Vec<f64>, v: &mut Vec<f64>) -> Result<u64> {
        let np = mlp.num_params();
        let Some((_, step)) = self.full.as_mut() else {
            return Err(ModelError::Config {
                field: "adam",
                value: "store".into(),
                reason: "no resident Adam was loaded".into(),
            });
        };
        let (mut th, mut mt, mut vt) = (vec![T::ZERO; np], vec![T::ZERO; np], vec![T::ZERO; np]);
        step.params(&mut th)?;
        step.moments(&mut mt, &mut vt)?;
        let f = |a: Vec<T>| a.into_iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
        mlp.set_flat_params(&f(th))?;
        *m = f(mt);
        *v = f(vt);
        Ok(self.adam_t)
    }
}
