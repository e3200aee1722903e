//! history.csv: the error against the reference solution at every logged iteration of a trial,
//! written while it trains (in every phase) and read back by plots and `mspinn compare`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use mspinn_model::Mlp;
use mspinn_train::metrics::{rel_l2, rel_linf};

/// The error against the reference solution at one logged iteration (history.csv).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub iteration: u64,
    /// Training seconds at that iteration, as in metrics.csv.
    pub seconds: f64,
    pub rel_linf: f64,
    pub rel_l2: f64,
}

pub const HISTORY_HEADER: &str = "iteration,seconds,rel_linf,rel_l2";

/// Reads a trial's history.csv (written as training logs, in every phase).
pub fn read_history(path: &Path) -> Result<Vec<HistoryRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || {
            format!(
                "{} line {}: expected {HISTORY_HEADER}",
                path.display(),
                i + 1
            )
        };
        anyhow::ensure!(f.len() == 4, bad());
        rows.push(HistoryRow {
            iteration: f[0].parse().with_context(bad)?,
            seconds: f[1].parse().with_context(bad)?,
            rel_linf: f[2].parse().with_context(bad)?,
            rel_l2: f[3].parse().with_context(bad)?,
        });
    }
    Ok(rows)
}

/// An `on_log` hook that appends the relative L∞ and L2 errors on the metrics grid to
/// `path` each time the trainer logs, in every phase, so error-vs-iteration curves of
/// first- and second-order optimisers can be compared (the loss alone does not show how far
/// the network is from u). Chains `inner`, the caller's own hook, if any.
pub fn history_hook(
    path: PathBuf,
    grid: Arc<Vec<f64>>,
    exact: Arc<Vec<f64>>,
    inner: Option<mspinn_train::OnLog>,
) -> mspinn_train::OnLog {
    Arc::new(move |it: u64, seconds: f64, m: &Mlp| {
        if let Some(f) = &inner {
            f(it, seconds, m);
        }
        // A failed probe must not stop training: the row is just missing from history.csv.
        let Ok(pred) = m.eval_points(&grid) else {
            return;
        };
        let line = format!(
            "{it},{seconds:.3},{:e},{:e}\n",
            rel_linf(&pred, &exact),
            rel_l2(&pred, &exact)
        );
        use std::io::Write;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        if let Ok(mut f) = file {
            let _ = f.write_all(line.as_bytes());
        }
    })
}
