//! Training PINNs: Adam phases, L-BFGS, second-order phases (Levenberg–Marquardt and Gauss–Newton
//! on the residual Jacobian), the loop that runs a schedule with logging, progress, a divergence
//! guard and resumable checkpoints, independent trials, and the paper's metrics.

pub mod adam;
pub mod checkpoint;
pub mod error;
pub mod lbfgs;
pub mod lm;
pub mod metrics;
pub mod schedule;
pub mod trainer;

pub use adam::{Adam, AdamState};
pub use error::TrainError;
pub use lbfgs::{LbfgsOptions, LbfgsOutcome, LbfgsSnapshot};
pub use lm::{
    gauss_newton_step, run_gn, run_lm, Damping, LmIteration, LmOptions, LmOutcome, SolveSpace,
};
pub use metrics::{TrialMetrics, TrialsSummary};
pub use schedule::{Phase, Schedule};
pub use trainer::{LogRow, OnLog, Progress, TrainOptions, TrainOutcome, Trainer};

pub type Result<T> = std::result::Result<T, TrainError>;
