//! The evaluation seam: everything that evaluates the network goes through [`Evaluator`].
//!
//! An evaluator is built once per run (or trial) from an [`EngineConfig`] and the network it will
//! evaluate ([`build`]): the device and dtype come with the network, the engine and its options
//! with the config. The trainer, the optimisers (Adam, L-BFGS, LM/GN) and the NTK module take a
//! `&mut dyn Evaluator` and nothing else, so which code computed a number is decided in one place
//! and recorded ([`Evaluator::engine`]); no global switch or environment variable changes it, and
//! an engine that cannot do something says so in an error instead of falling back.
//!
//! Two implementations: [`CpuEvaluator`], the hand-fused CPU engine ([`crate::cpu_engine`]), and
//! [`CandleEvaluator`], candle ops and autograd on any device (today's CUDA route; the GPU engine
//! will replace its insides). Tests hold the two together to 1e-12 in f64.

mod candle;
mod cpu;
mod device;
mod jacobian;

use std::ops::Range;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

pub use self::candle::CandleEvaluator;
pub use self::cpu::CpuEvaluator;
pub use self::device::{DeviceEvaluator, MakeBackend};
pub use self::jacobian::{jacobian_rows, RowCoefficients};
use crate::{FlatGrad, LossTerms, Mlp, ModelError, ResidualSet, Result};

/// Which implementation evaluates the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// The hand-fused CPU engine: one forward-and-reverse pass per tile of rows (CPU only).
    Cpu,
    /// candle ops, the fused residual op and candle's autograd, on any device.
    Candle,
    /// The GPU engine: flat parameter buffers, cuBLAS gemms and the fused kernels of
    /// `kernels/src/engine.cu`, Adam on the device (needs `--device cuda`).
    Gpu,
    /// The GPU engine's exact sequence of gemms and kernels run on the host backend (a
    /// reference gemm and the host-compiled CUDA headers): what proves the GPU engine without a
    /// GPU. Slow; for checks, not for training.
    GpuHost,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Cpu => "cpu",
            Engine::Candle => "candle",
            Engine::Gpu => "gpu",
            Engine::GpuHost => "gpu-host",
        }
    }

    /// The engine a device is evaluated with unless the user names one: the CPU engine on the
    /// CPU, candle on a GPU — until `scripts/gpu-check.sh` has passed on a real GPU, the GPU
    /// engine is chosen by name only (`--engine gpu`). A rule, not a fallback: the choice is
    /// made before anything runs and recorded with the results.
    pub fn for_device(device: &Device) -> Engine {
        if device.is_cpu() {
            Engine::Cpu
        } else {
            Engine::Candle
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Engine {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Engine::Cpu),
            "candle" => Ok(Engine::Candle),
            "gpu" => Ok(Engine::Gpu),
            "gpu-host" => Ok(Engine::GpuHost),
            other => Err(ModelError::Config {
                field: "engine",
                value: other.into(),
                reason: "expected cpu, candle, gpu or gpu-host".into(),
            }),
        }
    }
}

/// Tile size and thread count of the CPU engine (ignored by candle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineOptions {
    /// Rows per tile. Chosen so a tile's streams (≈ 8·tile·width values per hidden layer) stay
    /// in L2.
    pub tile: usize,
    /// Threads working on disjoint tile ranges (1: the calling thread only). Results are
    /// bit-identical from run to run for a given thread count and tile.
    pub threads: usize,
}

/// Rows per tile unless the user asks otherwise.
pub const DEFAULT_TILE: usize = 128;

impl Default for EngineOptions {
    /// One thread (the trainer runs one trial per core) and [`DEFAULT_TILE`] rows.
    fn default() -> Self {
        Self {
            tile: DEFAULT_TILE,
            threads: 1,
        }
    }
}

/// What a run asks of its evaluator: the engine (None: [`Engine::for_device`]) and its options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    #[serde(default)]
    pub engine: Option<Engine>,
    #[serde(default)]
    pub options: EngineOptions,
}

impl EngineConfig {
    pub fn new(engine: Option<Engine>, options: EngineOptions) -> Self {
        Self { engine, options }
    }
    /// The engine this config resolves to on `device`.
    pub fn resolve(&self, device: &Device) -> Engine {
        self.engine.unwrap_or_else(|| Engine::for_device(device))
    }
}

/// ∂L/∂θ as an engine produces it: a flat host buffer (CPU engine) or one tensor per variable
/// on the network's device ([`Mlp::vars`] order). Reused from step to step.
#[derive(Clone, Debug)]
pub enum Gradient {
    Host(FlatGrad),
    Device(Vec<Tensor>),
}

impl Default for Gradient {
    fn default() -> Self {
        Gradient::Host(FlatGrad::F64(Vec::new()))
    }
}

impl Gradient {
    /// The gradient as one f64 vector in flat-parameter order.
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        match self {
            Gradient::Host(g) => Ok(g.to_f64()),
            Gradient::Device(ts) => {
                let mut out = Vec::new();
                for t in ts {
                    out.extend(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
                }
                Ok(out)
            }
        }
    }
}

/// The seam. Every method evaluates `mlp` (at its current parameters) on `set`; the network
/// must be the architecture, dtype and device the evaluator was built for.
pub trait Evaluator: Send {
    /// Which implementation this is; recorded with every result.
    fn engine(&self) -> Engine;

    /// The loss terms of eq. (7).
    fn loss(&mut self, mlp: &Mlp, set: &ResidualSet) -> Result<LossTerms>;

    /// The loss terms and ∂L/∂θ into `grad` (reshaped if it does not fit).
    fn loss_and_grad(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        grad: &mut Gradient,
    ) -> Result<LossTerms>;

    /// The residual r_i of every row (unweighted, f64, on the host) into `out`, and the loss
    /// terms computed from the same pass.
    fn residuals(&mut self, mlp: &Mlp, set: &ResidualSet, out: &mut Vec<f64>) -> Result<LossTerms>;

    /// J = ∂r/∂θ of rows `rows` (unweighted), an (len × N_p) tensor on the network's device in
    /// its dtype, columns in flat parameter order ([`Mlp::vars`]).
    fn jacobian(&mut self, mlp: &Mlp, set: &ResidualSet, rows: Range<usize>) -> Result<Tensor>;

    /// The same rows of J in f64 on the host, row-major, into `out` (resized and overwritten):
    /// a loop that relinearises every iteration (Levenberg–Marquardt) reuses one buffer.
    fn jacobian_f64(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        rows: Range<usize>,
        out: &mut Vec<f64>,
    ) -> Result<()>;

    /// Adam with θ and the moments kept by the engine between steps (the GPU engine's, so a
    /// step moves no parameters across the bus), or None: the trainer then steps Adam on the
    /// host from [`Self::loss_and_grad`].
    fn resident_adam(&mut self) -> Option<&mut dyn ResidentAdam> {
        None
    }
}

/// Adam run by the engine on its own copy of θ and the moments. The trainer loads them at a
/// phase's start or resume, steps, and stores them back into the network (and its checkpoint's
/// moments) only where it reads them: before logging, checkpoints and the phase's end. The
/// update is the host Adam's arithmetic (`adam_constants`, the header's `adam_update`), so the
/// trajectory equals the host loop's over the same engine's gradients bit for bit.
pub trait ResidentAdam {
    /// θ from `mlp`, the moments (flat parameter order; empty for zeros) and the step count t.
    fn load(&mut self, mlp: &Mlp, set: &ResidualSet, m: &[f64], v: &[f64], t: u64) -> Result<()>;
    /// One step at `lr` on `set`: the loss terms at θ before the update.
    fn step(&mut self, set: &ResidualSet, lr: f64) -> Result<LossTerms>;
    /// Writes the engine's θ into `mlp` and its moments into `m`, `v`; returns t.
    fn store(&mut self, mlp: &Mlp, m: &mut Vec<f64>, v: &mut Vec<f64>) -> Result<u64>;
}

/// Builds the evaluator `config` asks for, for networks shaped like `mlp` on its device.
/// The CPU engine on a non-CPU device is an error that names the alternative.
pub fn build(config: &EngineConfig, mlp: &Mlp) -> Result<Box<dyn Evaluator>> {
    match config.resolve(mlp.device()) {
        Engine::Cpu => Ok(Box::new(CpuEvaluator::new(mlp, config.options)?)),
        Engine::Candle => Ok(Box::new(CandleEvaluator::new(mlp))),
        Engine::GpuHost => gpu_host(mlp),
        Engine::Gpu => gpu(mlp),
    }
}

/// The GPU engine's step on the host backend, for a network on the CPU.
fn gpu_host(mlp: &Mlp) -> Result<Box<dyn Evaluator>> {
    use crate::device::HostBackend;
    if !mlp.device().is_cpu() {
        return Err(ModelError::Config {
            field: "engine",
            value: "gpu-host".into(),
            reason: "gpu-host runs the GPU engine's step on the host: use --device cpu".into(),
        });
    }
    let e = Engine::GpuHost;
    match mlp.dtype() {
        DType::F32 => Ok(Box::new(DeviceEvaluator::<f32, _>::new(
            e,
            mlp,
            Box::new(HostBackend::new),
        )?)),
        DType::F64 => Ok(Box::new(DeviceEvaluator::<f64, _>::new(
            e,
            mlp,
            Box::new(HostBackend::new),
        )?)),
        other => Err(ModelError::DType(other)),
    }
}

/// The GPU engine on the network's CUDA device.
#[cfg(feature = "cuda")]
fn gpu(mlp: &Mlp) -> Result<Box<dyn Evaluator>> {
    use crate::device::cuda::CudaBackend;
    let Device::Cuda(dev) = mlp.device() else {
        return Err(gpu_needs_cuda());
    };
    let e = Engine::Gpu;
    match mlp.dtype() {
        DType::F32 => {
            let dev = dev.clone();
            Ok(Box::new(DeviceEvaluator::<f32, _>::new(
                e,
                mlp,
                Box::new(move || CudaBackend::new(&dev)),
            )?))
        }
        DType::F64 => {
            let dev = dev.clone();
            Ok(Box::new(DeviceEvaluator::<f64, _>::new(
                e,
                mlp,
                Box::new(move || CudaBackend::new(&dev)),
            )?))
        }
        other => Err(ModelError::DType(other)),
    }
}

#[cfg(not(feature = "cuda"))]
fn gpu(_mlp: &Mlp) -> Result<Box<dyn Evaluator>> {
    Err(gpu_needs_cuda())
}

fn gpu_needs_cuda() -> ModelError {
    ModelError::Config {
        field: "engine",
        value: "gpu".into(),
        reason: if cfg!(feature = "cuda") {
            "the GPU engine runs on a CUDA device: add --device cuda (or use --engine gpu-host to \
             run its step on the host)"
                .into()
        } else {
            "this binary was built without the `cuda` feature (scripts/build-cuda.sh builds one); \
             --engine gpu-host runs the GPU engine's step on the host"
                .into()
        },
    }
}

/// The fingerprint an evaluator checks its network against.
#[derive(Clone, Debug, PartialEq)]
struct Shape {
    dims: Vec<usize>,
    activation: crate::Activation,
    dtype: DType,
}

impl Shape {
    fn of(mlp: &Mlp) -> Self {
        Self {
            dims: mlp.config().dims(),
            activation: mlp.activation(),
            dtype: mlp.dtype(),
        }
    }
    fn check(&self, mlp: &Mlp) -> Result<()> {
        let got = Shape::of(mlp);
        if got != *self {
            return Err(ModelError::Shape {
                what: "network given to the evaluator".into(),
                expected: format!(
                    "{:?} {:?} {:?} (what it was built for)",
                    self.dims, self.activation, self.dtype
                ),
                got: format!("{:?} {:?} {:?}", got.dims, got.activation, got.dtype),
            });
        }
        Ok(())
    }
}

/// The set's points must live where the network's input does (ℝ^d, same d).
fn check_dim(mlp: &Mlp, set: &ResidualSet) -> Result<()> {
    let d = mlp.config().input_dim;
    if set.dim != d {
        return Err(ModelError::Shape {
            what: "residual set".into(),
            expected: format!("points in R^{d} (the network's input)"),
            got: format!("points in R^{}", set.dim),
        });
    }
    Ok(())
}

/// Checks a row range against the set.
fn check_rows(set: &ResidualSet, rows: &Range<usize>) -> Result<()> {
    if rows.start > rows.end || rows.end > set.len() {
        return Err(ModelError::Shape {
            what: "residual rows".into(),
            expected: format!("a range within 0..{}", set.len()),
            got: format!("{rows:?}"),
        });
    }
    Ok(())
}
