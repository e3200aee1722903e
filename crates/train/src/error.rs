use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("training diverged at iteration {iteration} (phase {phase}): {term} is not finite; the last good checkpoint is kept in {checkpoint}")]
    Diverged {
        iteration: u64,
        phase: usize,
        term: &'static str,
        checkpoint: String,
    },
    #[error("schedule {input:?}: {reason}")]
    Schedule { input: String, reason: String },
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: String, reason: String },
    #[error("L-BFGS: {0}")]
    Lbfgs(String),
    #[error(transparent)]
    Model(#[from] mspinn_model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("I/O on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
