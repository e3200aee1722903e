use thiserror::Error;

/// What can go wrong applying or self-testing the fused kernels.
#[derive(Debug, Error)]
pub enum KernelError {
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("unsupported dtype {0:?}: the fused residual computes in f32 or f64")]
    DType(candle_core::DType),
    #[error("{what}: {reason}")]
    Config { what: &'static str, reason: String },
    /// The self test needs a CUDA device and a binary built with the `cuda` feature.
    #[error("no CUDA: {0}")]
    NoCuda(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, KernelError>;
