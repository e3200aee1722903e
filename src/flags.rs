//! Flags that several commands share, defined once (`#[command(flatten)]`), and the closed sets
//! of values flags take (`clap::ValueEnum`), with the spellings accepted before they were typed.

use anyhow::{Context, Result};
use candle_core::DType;
use clap::{Args, ValueEnum};
use mspinn_model::{Activation, Init};

use crate::args::parse_usize_list;

/// `--device`: where a single-device command computes.
#[derive(Args, Clone, Debug)]
pub struct DeviceArg {
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// `--quiet`.
#[derive(Args, Clone, Debug)]
pub struct QuietArg {
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--eps`: one ε for a problem.
#[derive(Args, Clone, Debug)]
pub struct EpsArg {
    /// ε, as a decimal or a fraction like 1/32 (overrides the preset's or the file's).
    #[arg(long, value_parser = crate::args::parse_number)]
    pub eps: Option<f64>,
}

/// The hidden layers: `--widths 40,40,40,40`, or `--depth 4 --width 40`.
#[derive(Args, Clone, Debug)]
pub struct WidthsArgs {
    /// Hidden widths, e.g. 40,40,40,40 (takes precedence over --depth and --width).
    #[arg(long)]
    pub widths: Option<String>,
    /// Number of hidden layers (with --width; the other keeps its default).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Width of every hidden layer (with --depth).
    #[arg(long)]
    pub width: Option<usize>,
}

impl WidthsArgs {
    /// The parsed --widths, if given.
    pub fn parsed(&self) -> Result<Option<Vec<usize>>> {
        self.widths
            .as_deref()
            .map(|w| parse_usize_list(w).context("--widths"))
            .transpose()
    }

    /// The hidden widths, `default` filling in what is not given.
    pub fn resolve(&self, default: &[usize]) -> Result<Vec<usize>> {
        crate::args::hidden_widths(self.widths.as_deref(), self.depth, self.width, default)
    }
}

/// The float type a network computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// Hidden-layer activation (any letter case).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ActivationKind {
    Tanh,
    Sin,
    Softplus,
}

impl From<ActivationKind> for Activation {
    fn from(a: ActivationKind) -> Activation {
        match a {
            ActivationKind::Tanh => Activation::Tanh,
            ActivationKind::Sin => Activation::Sin,
            ActivationKind::Softplus => Activation::Softplus,
        }
    }
}

/// Weight initialisation (any letter case).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum InitKind {
    #[value(alias = "glorot_normal", alias = "glorot")]
    GlorotNormal,
    #[value(alias = "glorot_uniform")]
    GlorotUniform,
    #[value(alias = "standard-normal")]
    Normal,
}

impl From<InitKind> for Init {
    fn from(i: InitKind) -> Init {
        match i {
            InitKind::GlorotNormal => Init::GlorotNormal,
            InitKind::GlorotUniform => Init::GlorotUniform,
            InitKind::Normal => Init::Normal,
        }
    }
}

/// Collocation point layout (any letter case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PointsKind {
    // Equispaced, both ends included.
    Endpoints,
    // Cell midpoints.
    Midpoints,
    // Uniformly random (seeded).
    Random,
    // Uniformly random (seeded); the 2-D name of random.
    Uniform,
    // The Halton sequence in bases (2, 3) (2-D only).
    Halton,
}

impl PointsKind {
    pub fn name(self) -> &'static str {
        match self {
            PointsKind::Endpoints => "endpoints",
            PointsKind::Midpoints => "midpoints",
            PointsKind::Random => "random",
            PointsKind::Uniform => "uniform",
            PointsKind::Halton => "halton",
        }
    }
}

/// The operator of the NTK's problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Operator {
    // −(a(x/ε)u')' = f.
    Darcy,
    // −u'' = f.
    Poisson,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling the crates' own parsers take is a value of the flag, with the same meaning.
    #[test]
    fn value_enums_take_the_crates_spellings() {
        let init = |s: &str| InitKind::from_str(s, true).map(Init::from).ok();
        for s in [
            "glorot-normal",
            "glorot_normal",
            "glorot",
            "Glorot-Normal",
            "glorot-uniform",
            "glorot_uniform",
            "normal",
            "standard-normal",
            "NORMAL",
        ] {
            assert_eq!(init(s), Init::parse(s), "{s}");
        }
        assert_eq!(init("he"), None);
        let act = |s: &str| ActivationKind::from_str(s, true).map(Activation::from).ok();
        for s in ["tanh", "sin", "softplus", "TANH", "Softplus"] {
            assert_eq!(act(s), Activation::parse(s), "{s}");
        }
        for s in ["endpoints", "midpoints", "random", "Random"] {
            let k = PointsKind::from_str(s, true).unwrap();
            assert_eq!(k.name(), s.to_ascii_lowercase());
        }
        assert_eq!(
            Precision::from_str("f32", false).unwrap().dtype(),
            DType::F32
        );
        assert_eq!(Precision::from_str("f64", false).unwrap().name(), "f64");
        assert!(Precision::from_str("f16", false).is_err());
    }
}

/// Which evaluator computes the network (the evaluation seam), chosen once per run and recorded
/// with the results.
#[derive(Args, Clone, Debug)]
pub struct EngineArgs {
    /// Evaluator: `cpu`, the hand-fused CPU engine (the default on the CPU); `candle`, candle
    /// ops and autograd (the default on a GPU; on the CPU, the reference the engine is tested
    /// against); `gpu`, the GPU engine (cuBLAS + fused kernels, Adam on the device; needs
    /// `--device cuda`); `gpu-host`, the GPU engine's exact step on the host, to check it without
    /// a GPU (slow). An engine that cannot run where asked is an error, never a silent switch.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// Threads of the CPU engine within one trial or NTK (results are bit-identical for a given
    /// count; trials already run one per core).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub engine_threads: u16,
    /// Rows per tile of the CPU engine (a tile's jets should stay in L2).
    #[arg(long, default_value_t = mspinn_model::DEFAULT_TILE as u32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub engine_tile: u32,
}

impl EngineArgs {
    pub fn config(&self) -> mspinn_model::EngineConfig {
        mspinn_model::EngineConfig::new(
            self.engine.map(Into::into),
            mspinn_model::EngineOptions {
                tile: self.engine_tile as usize,
                threads: self.engine_threads as usize,
            },
        )
    }
}

/// `--engine` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    Cpu,
    Candle,
    Gpu,
    GpuHost,
}

impl From<EngineKind> for mspinn_model::Engine {
    fn from(k: EngineKind) -> Self {
        match k {
            EngineKind::Cpu => mspinn_model::Engine::Cpu,
            EngineKind::Candle => mspinn_model::Engine::Candle,
            EngineKind::Gpu => mspinn_model::Engine::Gpu,
            EngineKind::GpuHost => mspinn_model::Engine::GpuHost,
        }
    }
}
