//! Collocation point sets on [a, b].

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ProblemError;

/// Collocation point sets on [a, b]. Serialised in lower case (`{"endpoints": 512}`); the
/// capitalised variant names are accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointSpec {
    /// n equispaced points including both ends (the paper's "equispaced").
    #[serde(alias = "Endpoints")]
    Endpoints(usize),
    /// The midpoints of n equal cells: equispaced without the boundary, where the PDE residual
    /// and the boundary rows would otherwise share points.
    #[serde(alias = "Midpoints")]
    Midpoints(usize),
    /// n uniform samples from a ChaCha8 stream seeded with `seed`, sorted ascending so that
    /// plots and DFTs of residuals read left to right.
    #[serde(alias = "Random")]
    Random { n: usize, seed: u64 },
}

impl PointSpec {
    /// The number of points the spec produces.
    pub fn len(&self) -> usize {
        match *self {
            PointSpec::Endpoints(n) | PointSpec::Midpoints(n) | PointSpec::Random { n, .. } => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `"endpoints"`, `"midpoints"` or `"random"` (the seed is used by `random` only).
pub fn parse_point_kind(kind: &str, n: usize, seed: u64) -> Result<PointSpec, ProblemError> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "endpoints" => Ok(PointSpec::Endpoints(n)),
        "midpoints" => Ok(PointSpec::Midpoints(n)),
        "random" => Ok(PointSpec::Random { n, seed }),
        _ => Err(ProblemError::UnknownPointKind {
            kind: kind.to_owned(),
        }),
    }
}

/// The points of `spec` on the closed interval `domain`.
pub fn collocation(domain: (f64, f64), spec: PointSpec) -> Result<Vec<f64>, ProblemError> {
    let (a, b) = domain;
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(ProblemError::InvalidDomain { a, b });
    }
    let field = "points";
    if spec.is_empty() {
        return Err(ProblemError::EmptyPoints {
            field: field.to_owned(),
        });
    }
    // a(1 − t) + b t hits both ends exactly and is symmetric under a ↔ b.
    let lerp = |t: f64| a * (1.0 - t) + b * t;
    Ok(match spec {
        PointSpec::Endpoints(n) => {
            if n < 2 {
                return Err(ProblemError::TooFewPoints {
                    field: field.to_owned(),
                    n,
                    min: 2,
                });
            }
            let last = (n - 1) as f64;
            (0..n).map(|i| lerp(i as f64 / last)).collect()
        }
        PointSpec::Midpoints(n) => (0..n).map(|i| lerp((i as f64 + 0.5) / n as f64)).collect(),
        PointSpec::Random { n, seed } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut x: Vec<f64> = (0..n).map(|_| lerp(rng.random::<f64>())).collect();
            x.sort_by(f64::total_cmp);
            x
        }
    })
}
