//! A boundary value problem: operator, domain, data, and what it is compared with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::coefficient::Coefficient;
use crate::error::ProblemError;
use crate::expr::ScalarFn;
use crate::reference::solve_darcy;
use crate::residual::LinearResidual;

/// Which residual the PINN minimises. Serialised in lower case (`"darcy"`), and the capitalised
/// variant names are accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorKind {
    /// −(a(x/ε) u')' = f.
    #[serde(alias = "Darcy")]
    Darcy,
    /// −u'' = f.
    #[serde(alias = "Poisson")]
    Poisson,
    /// u = target (supervised learning, the paper's baseline).
    #[serde(alias = "Regression")]
    Regression,
}

impl OperatorKind {
    pub fn name(self) -> &'static str {
        match self {
            OperatorKind::Darcy => "darcy",
            OperatorKind::Poisson => "poisson",
            OperatorKind::Regression => "regression",
        }
    }
}

impl fmt::Display for OperatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OperatorKind {
    type Err = ProblemError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "darcy" => Ok(OperatorKind::Darcy),
            "poisson" => Ok(OperatorKind::Poisson),
            "regression" => Ok(OperatorKind::Regression),
            _ => Err(ProblemError::UnknownOperatorKind { kind: s.to_owned() }),
        }
    }
}

/// A 1-D boundary value problem (or regression task) on (a, b) with Dirichlet data.
#[derive(Clone, Debug)]
pub struct Problem {
    pub name: String,
    pub kind: OperatorKind,
    pub domain: (f64, f64),
    /// Some for Darcy (and twoscale presets, where it parametrises the data).
    pub eps: Option<f64>,
    /// Some for Darcy.
    pub coef: Option<Coefficient>,
    /// f(x); for Regression it is the target function.
    pub forcing: ScalarFn,
    /// Dirichlet values u(a), u(b).
    pub boundary: (f64, f64),
    /// Exact solution u(x) with u'(x), when known in closed form.
    pub exact: Option<ScalarFn>,
    /// The Darcy problem whose homogenised solution ū this problem is compared with (None for
    /// plain Darcy problems: they use themselves).
    pub homogenization: Option<Box<Problem>>,
}

/// Validation samples at least this many points per oscillation of the data.
const GRID_POINTS_PER_SCALE: f64 = 32.0;
/// ... and at least this many in all, for problems without a small scale.
const GRID_MIN_POINTS: usize = 2000;
/// Refuse grids beyond this, rather than looping for minutes on a nonsensical ε.
const GRID_MAX_POINTS: f64 = 1e8;

impl Problem {
    /// The smallest length scale of the data, which grids and quadrature must resolve: ε·P for
    /// Darcy (P the period of a), 2πε when ε only parametrises oscillatory data (sin(x/ε)),
    /// and a sixteenth of the domain otherwise.
    pub fn length_scale(&self) -> f64 {
        match (self.kind, self.eps, &self.coef) {
            (OperatorKind::Darcy, Some(eps), Some(coef)) => eps * coef.period(),
            (_, Some(eps), _) => 2.0 * std::f64::consts::PI * eps,
            _ => (self.domain.1 - self.domain.0) / 16.0,
        }
    }

    /// Name of the data function in messages: "forcing", or "target" for regression.
    fn forcing_field(&self) -> &'static str {
        match self.kind {
            OperatorKind::Regression => "target",
            _ => "forcing",
        }
    }

    /// The ε and a(·) of a Darcy problem, or which of them is missing.
    fn darcy_data(&self) -> Result<(f64, &Coefficient), ProblemError> {
        let missing = |field: &str| ProblemError::MissingField {
            field: field.to_owned(),
            kind: self.kind.to_string(),
        };
        let coef = self.coef.as_ref().ok_or_else(|| missing("coefficient"))?;
        let eps = self.eps.ok_or_else(|| missing("eps"))?;
        Ok((eps, coef))
    }

    /// Checks everything that would make training or a reference solve meaningless: ε ≤ 0 or
    /// non-finite, a ≤ 0 anywhere on the domain, a bad domain, non-finite data or boundary values,
    /// a Darcy problem without coefficient or ε. Functions are checked on a grid that resolves
    /// [`Problem::length_scale`]; a > 0 by [`Coefficient::check_positive`] over the y-range of
    /// the domain (a finer scan plus the critical points of a, from a'), so a dip narrower than
    /// the grid is found.
    pub fn validate(&self) -> Result<(), ProblemError> {
        let (a, b) = self.domain;
        if !(a.is_finite() && b.is_finite() && a < b) {
            return Err(ProblemError::InvalidDomain { a, b });
        }
        if let Some(eps) = self.eps {
            if !(eps.is_finite() && eps > 0.0) {
                return Err(ProblemError::InvalidValue {
                    field: "eps".to_owned(),
                    value: eps,
                    requirement: "finite and > 0",
                });
            }
        }
        let darcy = match self.kind {
            OperatorKind::Darcy => Some(self.darcy_data()?),
            _ => None,
        };
        for (field, value) in [
            ("boundary.a", self.boundary.0),
            ("boundary.b", self.boundary.1),
        ] {
            if !value.is_finite() {
                return Err(ProblemError::InvalidValue {
                    field: field.to_owned(),
                    value,
                    requirement: "finite",
                });
            }
        }

        let points = (GRID_POINTS_PER_SCALE * (b - a) / self.length_scale()).ceil();
        if points.is_nan() || points > GRID_MAX_POINTS {
            return Err(ProblemError::InvalidValue {
                field: "eps".to_owned(),
                value: self.eps.unwrap_or(f64::NAN),
                requirement: "large enough that the domain spans at most a few million periods",
            });
        }
        // Even, so that the midpoint of the domain is a grid point.
        let n = (points as usize).max(GRID_MIN_POINTS).next_multiple_of(2);
        if let Some((eps, coef)) = darcy {
            // a > 0 over the y-range of the domain, with the critical points of a located from
            // a' and one period scanned far more finely than this grid (see
            // `Coefficient::check_positive`); positions are reported in y and in x.
            coef.check_positive((a / eps, b / eps))
                .map_err(|e| match e {
                    ProblemError::NonPositiveCoefficient {
                        field,
                        expr,
                        y,
                        min,
                        ..
                    } => ProblemError::NonPositiveCoefficient {
                        field,
                        expr,
                        x: y * eps,
                        y,
                        min,
                    },
                    ProblemError::NonFinite { field, x: y, value } => {
                        non_finite(&field, y * eps, value)
                    }
                    other => other,
                })?;
        }
        for i in 0..=n {
            let t = i as f64 / n as f64;
            // Symmetric in a and b, so a symmetric domain puts a grid point exactly at 0.
            let x = a * (1.0 - t) + b * t;
            let f = self.forcing.eval(x);
            if !f.is_finite() {
                return Err(non_finite(self.forcing_field(), x, f));
            }
            if let Some(exact) = &self.exact {
                for (field, v) in [("exact", exact.eval(x)), ("exact'", exact.deriv(x))] {
                    if !v.is_finite() {
                        return Err(non_finite(field, x, v));
                    }
                }
            }
        }
        if let Some(h) = &self.homogenization {
            h.validate()?;
        }
        Ok(())
    }

    /// PDE (or regression) rows at the collocation points `x`, with the coefficients of
    /// [`LinearResidual`].
    pub fn pde_rows(&self, x: &[f64]) -> Result<LinearResidual, ProblemError> {
        if x.is_empty() {
            return Err(ProblemError::EmptyPoints {
                field: "collocation points".to_owned(),
            });
        }
        if let Some(&bad) = x.iter().find(|t| !t.is_finite()) {
            return Err(non_finite("collocation points", bad, bad));
        }
        let n = x.len();
        let mut rows = LinearResidual {
            x: x.to_vec(),
            c0: vec![0.0; n],
            c1: vec![0.0; n],
            c2: vec![0.0; n],
            g: Vec::with_capacity(n),
        };
        match self.kind {
            OperatorKind::Darcy => {
                let (eps, coef) = self.darcy_data()?;
                for (i, &t) in x.iter().enumerate() {
                    let y = t / eps;
                    rows.c2[i] = -coef.a(y);
                    rows.c1[i] = -coef.da(y) / eps;
                }
            }
            OperatorKind::Poisson => rows.c2.fill(-1.0),
            OperatorKind::Regression => rows.c0.fill(1.0),
        }
        rows.g.extend(x.iter().map(|&t| self.forcing.eval(t)));
        for (i, &t) in x.iter().enumerate() {
            for (field, v) in [
                ("coefficient", rows.c2[i]),
                ("coefficient derivative", rows.c1[i]),
                (self.forcing_field(), rows.g[i]),
            ] {
                if !v.is_finite() {
                    return Err(non_finite(field, t, v));
                }
            }
        }
        Ok(rows)
    }

    /// The two Dirichlet rows u(a) = u_a, u(b) = u_b; none for regression, whose data already
    /// pin the function.
    pub fn boundary_rows(&self) -> LinearResidual {
        match self.kind {
            OperatorKind::Regression => LinearResidual::default(),
            _ => LinearResidual {
                x: vec![self.domain.0, self.domain.1],
                c0: vec![1.0, 1.0],
                c1: vec![0.0, 0.0],
                c2: vec![0.0, 0.0],
                g: vec![self.boundary.0, self.boundary.1],
            },
        }
    }

    /// (u, u') at `x`: the closed form when `exact` is known, otherwise the quadrature solver
    /// (Poisson is Darcy with a ≡ 1). A regression target without closed form has no reference.
    pub fn reference_solution(&self, x: &[f64]) -> Result<Vec<(f64, f64)>, ProblemError> {
        if x.is_empty() {
            return Err(ProblemError::EmptyPoints {
                field: "x".to_owned(),
            });
        }
        if let Some(exact) = &self.exact {
            return Ok(x.iter().map(|&t| (exact.eval(t), exact.deriv(t))).collect());
        }
        let forcing = |t: f64| self.forcing.eval(t);
        match self.kind {
            OperatorKind::Darcy => {
                let (eps, coef) = self.darcy_data()?;
                let a = |t: f64| coef.a(t / eps);
                solve_darcy(
                    self.domain,
                    &a,
                    &forcing,
                    self.boundary,
                    self.length_scale(),
                    x,
                )
            }
            OperatorKind::Poisson => solve_darcy(
                self.domain,
                &|_| 1.0,
                &forcing,
                self.boundary,
                self.length_scale(),
                x,
            ),
            OperatorKind::Regression => Err(ProblemError::NoReference {
                name: self.name.clone(),
                kind: self.kind.to_string(),
            }),
        }
    }
}

impl Problem {
    /// `n` equispaced points on the domain (both ends) and the reference u there: the grid a
    /// trained network's errors are measured on (1000 points in the paper), for every front end.
    pub fn reference_on_grid(&self, n: usize) -> Result<(Vec<f64>, Vec<f64>), ProblemError> {
        let grid = crate::points::collocation(self.domain, crate::points::PointSpec::Endpoints(n))?;
        let exact = self
            .reference_solution(&grid)?
            .iter()
            .map(|p| p.0)
            .collect();
        Ok((grid, exact))
    }
}

fn non_finite(field: &str, x: f64, value: f64) -> ProblemError {
    ProblemError::NonFinite {
        field: field.to_owned(),
        x,
        value,
    }
}
