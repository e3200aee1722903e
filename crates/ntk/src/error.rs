use thiserror::Error;

#[derive(Debug, Error)]
pub enum NtkError {
    #[error("eigen-decomposition of a {n}×{n} matrix did not converge")]
    Eigen { n: usize },
    #[error("NTK option {field} = {value}: {reason}")]
    Option {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// Even the smallest chunk of Jacobian rows did not fit in device memory.
    #[error(
        "out of device memory even with {rows}-row Jacobian chunks ({message}); \
         free GPU memory or use a smaller network"
    )]
    OutOfMemory { rows: usize, message: String },
    #[error(transparent)]
    Model(#[from] mspinn_model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
