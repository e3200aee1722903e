//! Runs as a library: the typed values that describe a training run or an NTK sweep, and the
//! functions that carry them out and write their folders. The commands (`train`, `ntk`,
//! `reproduce`, `freq`, `bench`, `gpu-check`, `solve`, `compare`) turn their flags into these
//! values, or build them directly, and call the same functions.
//!
//! - [`spec`]: [`TrainSpec`], the paper's presets, run files and [`Overrides`];
//! - [`trials`]: [`prepare`] (problem, points, residual set) and [`run_trials`];
//! - [`history`]: each trial's history.csv;
//! - [`outputs`]: predictions.csv and the plots of a training run;
//! - [`ntk`]: [`NtkRequest`](ntk::NtkRequest) and the NTK sweep.

pub mod history;
pub mod ntk;
pub mod outputs;
pub mod spec;
pub mod trials;
pub mod two_d;

pub use history::{read_history, HistoryRow};
pub use spec::{preset_spec, Overrides, TrainSpec};
pub use trials::{prepare, reference_on_grid, run_trials, Interrupted, TrainResult};
