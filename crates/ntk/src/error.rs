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
    #[error(transparent)]
    Model(#[from] mspinn_model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
