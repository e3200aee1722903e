//! The network half of mspinn: a plain MLP whose parameters are candle `Var`s, seeded host-side
//! initialisation, the Taylor-mode forward pass that yields u, u' and u'' in one sweep, the linear
//! residual shared by every problem kind, the loss of eq. (7) — and the evaluation seam
//! ([`evaluator`]) through which everything else evaluates the network.
//!
//! candle has no second-order autodiff, so u'' cannot come from nesting `backward`; the jets in
//! [`jets`] propagate the derivatives forward instead. ∂L/∂θ comes from the hand-written reverse
//! pass of the CPU engine ([`cpu_engine`]) or, on other devices, from candle's first-order
//! autograd over the jet graph ([`evaluator::CandleEvaluator`]); tests hold the two together.

pub mod activation;
pub mod cpu_engine;
pub mod device;
pub mod error;
pub mod evaluator;
pub mod fixture;
pub mod flat;
pub mod init;
pub mod jets;
pub mod loss;
pub mod mlp;
pub mod residual;
pub mod size_plan;

pub use activation::Activation;
pub use error::ModelError;
pub use evaluator::{Engine, EngineConfig, EngineOptions, Evaluator, Gradient, DEFAULT_TILE};
pub use flat::{update_var_in_place, FlatGrad};
pub use init::Init;
pub use jets::{Jets, LayerTrace, Trace};
pub use loss::LossTerms;
pub use mlp::{Mlp, MlpConfig};
pub use mspinn_kernels::Real;
pub use residual::ResidualSet;

pub use candle_core::{DType, Device, Tensor};

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
