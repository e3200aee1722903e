//! Training schedules: a list of phases written like `10000@1e-4,10000@1e-5,lbfgs:5000`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TrainError;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Phase {
    /// `ITERS@LR`: Adam for ITERS steps at learning rate LR.
    Adam { iters: u64, lr: f64 },
    /// `lbfgs:MAXITER`: L-BFGS in f64 until converged or MAXITER iterations.
    Lbfgs { max_iters: u64 },
}

impl Phase {
    /// Iterations this phase will run at most (for progress bars).
    pub fn max_iters(&self) -> u64 {
        match *self {
            Phase::Adam { iters, .. } => iters,
            Phase::Lbfgs { max_iters } => max_iters,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Schedule {
    pub phases: Vec<Phase>,
}

impl Schedule {
    pub fn new(phases: Vec<Phase>) -> Self {
        Self { phases }
    }
    pub fn total_iters(&self) -> u64 {
        self.phases.iter().map(Phase::max_iters).sum()
    }
    /// The schedule with every Adam phase shortened by `factor` (≥ 1 iteration each) and L-BFGS
    /// capped: what `--quick` runs.
    pub fn scaled(&self, factor: f64, lbfgs_cap: u64) -> Self {
        Self::new(
            self.phases
                .iter()
                .map(|p| match *p {
                    Phase::Adam { iters, lr } => Phase::Adam {
                        iters: ((iters as f64 * factor).round() as u64).max(1),
                        lr,
                    },
                    Phase::Lbfgs { max_iters } => Phase::Lbfgs {
                        max_iters: max_iters.min(lbfgs_cap),
                    },
                })
                .collect(),
        )
    }
}

impl FromStr for Schedule {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self, TrainError> {
        let err = |reason: String| TrainError::Schedule {
            input: s.to_string(),
            reason,
        };
        let mut phases = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(rest) = part.strip_prefix("lbfgs") {
                let n = rest.strip_prefix(':').unwrap_or("15000");
                let max_iters: u64 = n
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("{part:?}: expected lbfgs:MAXITER")))?;
                phases.push(Phase::Lbfgs { max_iters });
            } else if let Some((it, lr)) = part.split_once('@') {
                let iters: u64 = it
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("{part:?}: {it:?} is not an iteration count")))?;
                let lr: f64 = lr
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("{part:?}: {lr:?} is not a learning rate")))?;
                if !(lr.is_finite() && lr > 0.0) {
                    return Err(err(format!("{part:?}: the learning rate must be > 0")));
                }
                phases.push(Phase::Adam { iters, lr });
            } else {
                return Err(err(format!(
                    "{part:?}: each phase is ITERS@LR (Adam) or lbfgs:MAXITER"
                )));
            }
        }
        if phases.is_empty() {
            return Err(err("no phases".into()));
        }
        Ok(Self { phases })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|p| match p {
                Phase::Adam { iters, lr } => format!("{iters}@{lr:e}"),
                Phase::Lbfgs { max_iters } => format!("lbfgs:{max_iters}"),
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let s: Schedule = "10000@1e-4, 20@0.5,lbfgs:300".parse().unwrap();
        assert_eq!(
            s.phases,
            vec![
                Phase::Adam {
                    iters: 10000,
                    lr: 1e-4
                },
                Phase::Adam { iters: 20, lr: 0.5 },
                Phase::Lbfgs { max_iters: 300 }
            ]
        );
        let again: Schedule = s.to_string().parse().unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn rejects_bad_phases() {
        for bad in ["", "10@", "x@1e-3", "10@-1", "10@nan", "lbfgs:x", "adam"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?} accepted");
        }
    }
}
