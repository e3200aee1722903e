//! [`Evaluator`] through the hand-fused CPU engine, borrowing the network's and the set's CPU
//! storage (no copies) for every call.

use std::ops::Range;

use candle_core::{DType, Layout, Storage, Tensor};

use super::{check_rows, Engine, EngineOptions, Evaluator, Gradient, Shape};
use crate::cpu_engine::{CpuEngine, Rows};
use crate::{FlatGrad, LossTerms, Mlp, ModelError, Real, ResidualSet, Result};

enum Typed {
    F32(CpuEngine<f32>),
    F64(CpuEngine<f64>),
}

/// The CPU engine behind the seam, with its workspace (allocated once, reused by every call).
pub struct CpuEvaluator {
    engine: Typed,
    shape: Shape,
}

impl CpuEvaluator {
    /// For networks shaped like `mlp`, which must live on the CPU in f32 or f64.
    pub fn new(mlp: &Mlp, options: EngineOptions) -> Result<Self> {
        if !mlp.device().is_cpu() {
            return Err(ModelError::Config {
                field: "engine",
                value: "cpu".into(),
                reason: format!(
                    "the CPU engine evaluates networks on the CPU; this one is on {:?} \
                     (use the candle engine there)",
                    mlp.device().location()
                ),
            });
        }
        let dims = mlp.config().dims();
        let engine = match mlp.dtype() {
            DType::F32 => Typed::F32(CpuEngine::new(&dims, mlp.activation(), options)?),
            DType::F64 => Typed::F64(CpuEngine::new(&dims, mlp.activation(), options)?),
            other => return Err(ModelError::DType(other)),
        };
        Ok(Self {
            engine,
            shape: Shape::of(mlp),
        })
    }

    pub fn options(&self) -> EngineOptions {
        match &self.engine {
            Typed::F32(e) => e.options(),
            Typed::F64(e) => e.options(),
        }
    }

    /// Bytes of one thread's tile buffers (what should fit in L2).
    pub fn tile_bytes(&self) -> usize {
        match &self.engine {
            Typed::F32(e) => e.tile_bytes(),
            Typed::F64(e) => e.tile_bytes(),
        }
    }
}

/// A contiguous CPU tensor's values, borrowed.
fn cpu_slice<'a, T: Real>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [T]> {
    let not_host = || ModelError::Shape {
        what: format!("{what} for the CPU engine"),
        expected: format!(
            "a contiguous CPU tensor of {:?}",
            <T as candle_core::WithDType>::DTYPE
        ),
        got: "another device, dtype or layout".into(),
    };
    let Storage::Cpu(cpu) = storage else {
        return Err(not_host());
    };
    let (a, b) = layout.contiguous_offsets().ok_or_else(not_host)?;
    Ok(&cpu.as_slice::<T>().map_err(|_| not_host())?[a..b])
}

/// Borrows the network's parameters and rows `range` of the set as slices and hands them to `f`.
fn with_slices<T: Real, R>(
    mlp: &Mlp,
    set: &ResidualSet,
    range: Range<usize>,
    f: impl FnOnce(&[&[T]], &[&[T]], &Rows<'_, T>) -> Result<R>,
) -> Result<R> {
    check_rows(set, &range)?;
    super::check_dim(mlp, set)?;
    let nl = mlp.num_layers();
    let tensors: Vec<(&Tensor, &str)> = (0..nl)
        .flat_map(|l| {
            [
                (mlp.weight(l).as_tensor(), "a weight"),
                (mlp.bias(l).as_tensor(), "a bias"),
            ]
        })
        .chain([
            (&set.x, "x"),
            (&set.c0, "c0"),
            (&set.c1, "c1"),
            (&set.c2, "c2"),
            (&set.g, "g"),
            (&set.w, "w"),
        ])
        .collect();
    let guards: Vec<_> = tensors
        .iter()
        .map(|(t, _)| t.storage_and_layout())
        .collect();
    let mut sl: Vec<&[T]> = Vec::with_capacity(guards.len());
    for ((g, layout), (_, what)) in guards.iter().zip(&tensors) {
        sl.push(cpu_slice::<T>(g, layout, what)?);
    }
    let w: Vec<&[T]> = (0..nl).map(|l| sl[2 * l]).collect();
    let b: Vec<&[T]> = (0..nl).map(|l| sl[2 * l + 1]).collect();
    let r = &sl[2 * nl..];
    fn cut<'a, T>(v: &'a [T], r: &Range<usize>) -> &'a [T] {
        &v[r.clone()]
    }
    // x, c1 and c2 hold d values a row (the set's dimension).
    let d = set.dim;
    let wide = range.start * d..range.end * d;
    let rows = Rows {
        x: cut(r[0], &wide),
        c0: cut(r[1], &range),
        c1: cut(r[2], &wide),
        c2: cut(r[3], &wide),
        g: cut(r[4], &range),
        w: cut(r[5], &range),
        n_pde: set.n_pde.saturating_sub(range.start).min(range.len()),
    };
    f(&w, &b, &rows)
}

impl Evaluator for CpuEvaluator {
    fn engine(&self) -> Engine {
        Engine::Cpu
    }

    fn loss(&mut self, mlp: &Mlp, set: &ResidualSet) -> Result<LossTerms> {
        self.shape.check(mlp)?;
        let all = 0..set.len();
        match &mut self.engine {
            Typed::F32(e) => with_slices(mlp, set, all, |w, b, rows| e.run(w, b, rows, None)),
            Typed::F64(e) => with_slices(mlp, set, all, |w, b, rows| e.run(w, b, rows, None)),
        }
    }

    fn loss_and_grad(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        grad: &mut Gradient,
    ) -> Result<LossTerms> {
        self.shape.check(mlp)?;
        let np = mlp.num_params();
        let fits = matches!((&self.engine, &*grad),
            (Typed::F32(_), Gradient::Host(FlatGrad::F32(g))) if g.len() == np)
            || matches!((&self.engine, &*grad),
            (Typed::F64(_), Gradient::Host(FlatGrad::F64(g))) if g.len() == np);
        if !fits {
            *grad = Gradient::Host(FlatGrad::zeros(mlp.dtype(), np)?);
        }
        let all = 0..set.len();
        match (&mut self.engine, grad) {
            (Typed::F32(e), Gradient::Host(FlatGrad::F32(g))) => {
                with_slices(mlp, set, all, |w, b, rows| e.run(w, b, rows, Some(g)))
            }
            (Typed::F64(e), Gradient::Host(FlatGrad::F64(g))) => {
                with_slices(mlp, set, all, |w, b, rows| e.run(w, b, rows, Some(g)))
            }
            _ => unreachable!("the gradient buffer was shaped for this engine above"),
        }
    }

    fn residuals(&mut self, mlp: &Mlp, set: &ResidualSet, out: &mut Vec<f64>) -> Result<LossTerms> {
        self.shape.check(mlp)?;
        let all = 0..set.len();
        match &mut self.engine {
            Typed::F32(e) => {
                let mut r = vec![0f32; set.len()];
                let t = with_slices(mlp, set, all, |w, b, rows| e.residuals(w, b, rows, &mut r))?;
                *out = r.into_iter().map(f64::from).collect();
                Ok(t)
            }
            Typed::F64(e) => {
                out.resize(set.len(), 0.0);
                with_slices(mlp, set, all, |w, b, rows| e.residuals(w, b, rows, out))
            }
        }
    }

    fn jacobian(&mut self, mlp: &Mlp, set: &ResidualSet, rows: Range<usize>) -> Result<Tensor> {
        self.shape.check(mlp)?;
        let shape = (rows.len(), mlp.num_params());
        let n = shape.0 * shape.1;
        match &mut self.engine {
            Typed::F32(e) => {
                let mut j = vec![0f32; n];
                with_slices(mlp, set, rows, |w, b, r| e.jacobian(w, b, r, &mut j))?;
                Ok(Tensor::from_vec(j, shape, mlp.device())?)
            }
            Typed::F64(e) => {
                let mut j = vec![0f64; n];
                with_slices(mlp, set, rows, |w, b, r| e.jacobian(w, b, r, &mut j))?;
                Ok(Tensor::from_vec(j, shape, mlp.device())?)
            }
        }
    }

    fn jacobian_f64(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        rows: Range<usize>,
        out: &mut Vec<f64>,
    ) -> Result<()> {
        self.shape.check(mlp)?;
        let n = rows.len() * mlp.num_params();
        match &mut self.engine {
            Typed::F32(e) => {
                let mut j = vec![0f32; n];
                with_slices(mlp, set, rows, |w, b, r| e.jacobian(w, b, r, &mut j))?;
                *out = j.into_iter().map(f64::from).collect();
            }
            Typed::F64(e) => {
                // Resized, not reallocated: see the trait's doc.
                out.resize(n, 0.0);
                with_slices(mlp, set, rows, |w, b, r| e.jacobian(w, b, r, out))?;
            }
        }
        Ok(())
    }
}
