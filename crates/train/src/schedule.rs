//! Training schedules: a list of phases written like `10000@1e-4,10000@1e-5,lbfgs:5000`, or with
//! second-order phases, `2000@1e-3,lm:500` / `2000@1e-3,gn:200`.

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
    /// `lm:MAXITER`: Levenberg–Marquardt (see [`crate::lm`]) for at most MAXITER trial steps.
    Lm { max_iters: u64 },
    /// `gn:MAXITER`: damped Gauss–Newton with a line search for at most MAXITER steps.
    Gn { max_iters: u64 },
}

impl Phase {
    /// Iterations this phase will run at most (for progress bars).
    pub fn max_iters(&self) -> u64 {
        match *self {
            Phase::Adam { iters, .. } => iters,
            Phase::Lbfgs { max_iters } | Phase::Lm { max_iters } | Phase::Gn { max_iters } => {
                max_iters
            }
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
    /// Whether this schedule runs all of `earlier`'s phases first, unchanged, and possibly more:
    /// a checkpoint written under `earlier` can then be resumed under this one (a finished run
    /// given more LM iterations, say) without changing what was already computed.
    pub fn extends(&self, earlier: &Schedule) -> bool {
        self.phases.len() >= earlier.phases.len()
            && self.phases.iter().zip(&earlier.phases).all(|(a, b)| a == b)
    }
    pub fn total_iters(&self) -> u64 {
        self.phases.iter().map(Phase::max_iters).sum()
    }
    /// The schedule with every Adam phase shortened by `factor` (≥ 1 iteration each) and L-BFGS,
    /// LM and GN phases capped at `lbfgs_cap` iterations: what `--quick` runs.
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
                    Phase::Lm { max_iters } => Phase::Lm {
                        max_iters: max_iters.min(lbfgs_cap),
                    },
                    Phase::Gn { max_iters } => Phase::Gn {
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
            let phase_no = phases.len() + 1;
            // A phase that runs no iteration trains nothing: the run would report an untrained
            // (or half-trained) network as if the schedule had been followed.
            let at_least_one = |iters: u64| {
                if iters == 0 {
                    Err(err(format!(
                        "phase {phase_no} {part:?} runs 0 iterations; every phase needs at least 1 (drop the phase instead)"
                    )))
                } else {
                    Ok(iters)
                }
            };
            if let Some(rest) = part
                .strip_prefix("lbfgs")
                .filter(|rest| rest.is_empty() || rest.trim_start().starts_with(':'))
            {
                let n = rest.trim_start().strip_prefix(':').unwrap_or("15000");
                let max_iters: u64 = n
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("{part:?}: expected lbfgs:MAXITER")))?;
                let max_iters = at_least_one(max_iters)?;
                phases.push(Phase::Lbfgs { max_iters });
            } else if let Some((name, n)) = part
                .split_once(':')
                .filter(|(name, _)| matches!(name.trim(), "lm" | "gn"))
            {
                let max_iters: u64 = n.trim().parse().map_err(|_| {
                    err(format!(
                        "{part:?}: expected {}:MAXITER with a whole number of iterations",
                        name.trim()
                    ))
                })?;
                let max_iters = at_least_one(max_iters)?;
                phases.push(match name.trim() {
                    "lm" => Phase::Lm { max_iters },
                    _ => Phase::Gn { max_iters },
                });
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
                let iters = at_least_one(iters)?;
                phases.push(Phase::Adam { iters, lr });
            } else {
                return Err(err(format!(
                    "{part:?}: each phase is ITERS@LR (Adam), lbfgs:MAXITER, lm:MAXITER or gn:MAXITER"
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
                Phase::Lm { max_iters } => format!("lm:{max_iters}"),
                Phase::Gn { max_iters } => format!("gn:{max_iters}"),
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
    fn second_order_phases_parse_and_round_trip() {
        let s: Schedule = "2000@1e-3, lm:50,gn:7".parse().unwrap();
        assert_eq!(
            s.phases[1..],
            [Phase::Lm { max_iters: 50 }, Phase::Gn { max_iters: 7 }]
        );
        assert_eq!(s.to_string(), "2000@1e-3,lm:50,gn:7");
        assert_eq!(s.to_string().parse::<Schedule>().unwrap(), s);
        assert_eq!(s.total_iters(), 2057);
        assert_eq!(
            s.scaled(0.5, 10).phases[1..],
            [Phase::Lm { max_iters: 10 }, Phase::Gn { max_iters: 7 }]
        );
    }

    #[test]
    fn rejects_bad_phases() {
        for bad in [
            "", "10@", "x@1e-3", "10@-1", "10@nan", "lbfgs:x", "adam", "lm", "lm:", "lm:-3",
            "gn:1.5", "lmx:3", "qn:5",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rejects_zero_iteration_phases_naming_the_phase_and_the_schedule() {
        for (bad, phase) in [
            ("0@1e-3", "phase 1 \"0@1e-3\""),
            ("100@1e-3,lm:0", "phase 2 \"lm:0\""),
            ("100@1e-3, 5@1e-4, lbfgs:0", "phase 3 \"lbfgs:0\""),
            ("gn:0", "phase 1 \"gn:0\""),
            ("10@1e-3,00@1e-4", "phase 2 \"00@1e-4\""),
        ] {
            let e = bad.parse::<Schedule>().expect_err(bad).to_string();
            assert!(e.starts_with("schedule "), "{bad:?}: {e}");
            assert!(e.contains(phase), "{bad:?}: {e}");
            assert!(e.contains("0 iterations"), "{bad:?}: {e}");
        }
        // One iteration is still a phase.
        assert!("1@1e-3,lm:1,gn:1,lbfgs:1".parse::<Schedule>().is_ok());
    }

    #[test]
    fn lbfgs_prefix_is_not_a_wildcard() {
        // `lbfgsx:3` used to parse as `lbfgs` with the default 15000 iterations.
        for bad in ["lbfgsx:3", "lbfgs5", "lbfgs_3"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            "lbfgs".parse::<Schedule>().unwrap().phases,
            [Phase::Lbfgs { max_iters: 15000 }]
        );
        assert_eq!(
            "lbfgs : 7".parse::<Schedule>().unwrap().phases,
            [Phase::Lbfgs { max_iters: 7 }]
        );
    }
}
