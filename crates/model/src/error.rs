use thiserror::Error;

/// Everything that can go wrong building, evaluating or (de)serialising a network.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("network config: {field} = {value}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    #[error("weights file {path}: {reason}")]
    Weights { path: String, reason: String },
    #[error("unsupported dtype {0:?}: mspinn computes in f32 or f64")]
    DType(candle_core::DType),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Kernel(#[from] mspinn_kernels::KernelError),
}
