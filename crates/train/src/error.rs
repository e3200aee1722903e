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
    #[error("Levenberg–Marquardt / Gauss–Newton: {0}")]
    Lm(String),
    /// The damped normal equations could not be factorised even after raising μ to the cap
    /// (`LmOptions::mu_max_rel` times its scale): the Jacobian holds non-finite entries or the
    /// problem is scaled beyond f64.
    #[error("{method}: Cholesky factorisation of the {space} system ({n}×{n}) failed even with the damping raised to μ = {mu:e}; the Jacobian is not finite or the problem is badly scaled")]
    Cholesky {
        method: &'static str,
        space: &'static str,
        n: usize,
        mu: f64,
    },
    #[error("optimiser option {field} = {value}: {reason}")]
    Option {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Ntk(#[from] mspinn_ntk::NtkError),
    #[error(transparent)]
    Model(#[from] mspinn_model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A second-order phase was asked to stop between two iterations (SIGINT, `stop_after`):
    /// the trainer catches this, checkpoints the accepted iterate and ends the run.
    #[error("stopped on request between two iterations")]
    Stopped,
    #[error("I/O on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
