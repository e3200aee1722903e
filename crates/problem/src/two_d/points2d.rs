//! Collocation point sets on a rectangle, and boundary point sets on its edges.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ProblemError;
use crate::two_d::problem2d::Rect;

/// Interior collocation sets on a rectangle. Serialised in lower case (`{"midpoints": 4096}`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointSpec2d {
    /// The n × n cell midpoints of an n × n grid, for `nc = n²` points (an error names `--nc`
    /// when nc is not a perfect square): equispaced without the boundary, like 1-D midpoints.
    Midpoints(usize),
    /// nc independent uniform samples from a ChaCha8 stream seeded with `seed`.
    Uniform { n: usize, seed: u64 },
    /// The first nc points of the Halton sequence in bases (2, 3), from index 1 (index 0 is
    /// the corner (x₀, y₀)). A low-discrepancy set without a Sobol generator's direction
    /// numbers: the project has no Sobol sequence in 1-D to reuse, and Halton in two
    /// dimensions with the two smallest prime bases has no correlation artefacts.
    Halton(usize),
}

/// Kinds accepted by [`parse_point_kind_2d`].
pub const POINT_KINDS_2D: &[&str] = &["midpoints", "uniform", "halton"];

impl PointSpec2d {
    pub fn len(&self) -> usize {
        match *self {
            PointSpec2d::Midpoints(n) | PointSpec2d::Uniform { n, .. } | PointSpec2d::Halton(n) => {
                n
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `"midpoints"`, `"uniform"` (also `"random"`, its 1-D name) or `"halton"`.
pub fn parse_point_kind_2d(kind: &str, n: usize, seed: u64) -> Result<PointSpec2d, ProblemError> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "midpoints" => Ok(PointSpec2d::Midpoints(n)),
        "uniform" | "random" => Ok(PointSpec2d::Uniform { n, seed }),
        "halton" => Ok(PointSpec2d::Halton(n)),
        _ => Err(ProblemError::UnknownName {
            field: "points.kind".to_owned(),
            name: kind.to_owned(),
            known: POINT_KINDS_2D.join(", "),
        }),
    }
}

/// The interior points of `spec` on `domain`, row by row in y for midpoints (x fastest).
pub fn collocation_2d(domain: Rect, spec: PointSpec2d) -> Result<Vec<[f64; 2]>, ProblemError> {
    domain.check()?;
    if spec.is_empty() {
        return Err(ProblemError::EmptyPoints {
            field: "--nc".to_owned(),
        });
    }
    Ok(match spec {
        PointSpec2d::Midpoints(nc) => {
            let n = exact_sqrt(nc).ok_or_else(|| {
                let r = nc.isqrt();
                ProblemError::NotASquare {
                    field: "--nc".to_owned(),
                    n: nc,
                    below: r * r,
                    above: (r + 1) * (r + 1),
                }
            })?;
            let t = |i: usize| (i as f64 + 0.5) / n as f64;
            (0..n)
                .flat_map(|j| (0..n).map(move |i| (i, j)))
                .map(|(i, j)| domain.lerp(t(i), t(j)))
                .collect()
        }
        PointSpec2d::Uniform { n, seed } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..n)
                .map(|_| {
                    let s = rng.random::<f64>();
                    let t = rng.random::<f64>();
                    domain.lerp(s, t)
                })
                .collect()
        }
        PointSpec2d::Halton(n) => (1..=n)
            .map(|i| domain.lerp(radical_inverse(i, 2), radical_inverse(i, 3)))
            .collect(),
    })
}

/// n points on the boundary of `domain`, evenly spread: each side gets a share of n
/// proportional to its length (largest remainders, at least one), and a side's points start at
/// its first corner (counter-clockwise from (x₀, y₀)) and are equispaced up to, not including,
/// the next corner. So every corner appears exactly once, and no point is repeated.
pub fn boundary_points(domain: Rect, n: usize) -> Result<Vec<[f64; 2]>, ProblemError> {
    domain.check()?;
    if n < 4 {
        return Err(ProblemError::TooFewPoints {
            field: "boundary points".to_owned(),
            n,
            min: 4,
        });
    }
    let [w, h] = domain.size();
    let lengths = [w, h, w, h];
    let perimeter = 2.0 * (w + h);
    // One point per side is fixed (its corner); the other n − 4 are shared by length.
    let extra = (n - 4) as f64;
    let ideal: Vec<f64> = lengths.iter().map(|l| extra * l / perimeter).collect();
    let mut counts: Vec<usize> = ideal.iter().map(|v| v.floor() as usize).collect();
    let mut left = (n - 4) - counts.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..4).collect();
    order.sort_by(|&a, &b| (ideal[b] - ideal[b].floor()).total_cmp(&(ideal[a] - ideal[a].floor())));
    for &k in order.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[k] += 1;
        left -= 1;
    }
    // Side k runs from corner k to corner k + 1 (in fractions of the rectangle).
    let corners = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
    let mut out = Vec::with_capacity(n);
    for k in 0..4 {
        let m = counts[k] + 1;
        let (s0, t0) = corners[k];
        let (s1, t1) = corners[(k + 1) % 4];
        for i in 0..m {
            let f = i as f64 / m as f64;
            out.push(domain.lerp(s0 + (s1 - s0) * f, t0 + (t1 - t0) * f));
        }
    }
    Ok(out)
}

/// √n when n is a perfect square.
fn exact_sqrt(n: usize) -> Option<usize> {
    let r = n.isqrt();
    (r * r == n).then_some(r)
}

/// The van der Corput radical inverse of i in `base`: its digits mirrored about the point.
fn radical_inverse(mut i: usize, base: usize) -> f64 {
    let inv = 1.0 / base as f64;
    let mut f = inv;
    let mut r = 0.0;
    while i > 0 {
        r += (i % base) as f64 * f;
        i /= base;
        f *= inv;
    }
    r
}
