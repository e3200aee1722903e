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
    /// The network described in the weights file's metadata is not the one asked for.
    #[error(
        "weights file {path} holds a network with {field} = {stored}, but {field} = {given} \
         was given; use the stored one (or load the file with its own config)"
    )]
    WeightsMismatch {
        path: String,
        field: &'static str,
        stored: String,
        given: String,
    },
    /// A tensor of the weights file is not floating point (i64, u8, …).
    #[error("weights file {path}: tensor {tensor} holds {dtype:?} values; network weights must be f32 or f64")]
    WeightsDType {
        path: String,
        tensor: String,
        dtype: candle_core::DType,
    },
    /// A command would need more memory than the machine has (see [`crate::size_plan`]).
    #[error("{what} needs ~{needs}; this machine has {available} available; {hint}")]
    TooLarge {
        what: String,
        needs: String,
        available: String,
        hint: String,
    },
    /// A count or thread number given on the command line is not usable (not finite, negative,
    /// fractional, beyond what can be counted or beyond the cap).
    #[error("{option} {value}: {reason}")]
    Count {
        option: String,
        value: String,
        reason: String,
    },
    #[error("unsupported dtype {0:?}: mspinn computes in f32 or f64")]
    DType(candle_core::DType),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Kernel(#[from] mspinn_kernels::KernelError),
}
