//! The network half of mspinn: a plain MLP whose parameters are candle `Var`s, seeded host-side
//! initialisation, the Taylor-mode forward pass that yields u, u' and u'' in one sweep, the linear
//! residual shared by every problem kind, and the loss of eq. (7) with its autograd gradient.
//!
//! candle has no second-order autodiff, so u'' cannot come from nesting `backward`; the jets in
//! [`jets`] propagate the derivatives forward instead, and first-order autograd over that graph gives
//! ∂loss/∂θ.

pub mod activation;
pub mod cpu_engine;
pub mod error;
pub mod init;
pub mod jets;
pub mod loss;
pub mod mlp;
pub mod residual;
pub mod size_plan;

pub use activation::Activation;
pub use cpu_engine::{EngineOptions, FlatGrad};
pub use error::ModelError;
pub use init::Init;
pub use jets::{Jets, LayerTrace, Trace};
pub use loss::{LossTerms, LossWithGrad};
pub use mlp::{Mlp, MlpConfig};
pub use residual::ResidualSet;

pub use candle_core::{DType, Device, Tensor};

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
