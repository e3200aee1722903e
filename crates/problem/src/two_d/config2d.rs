//! The `[problem]` table of a 2-D run, as read from TOML.
//!
//! ```toml
//! [problem]
//! domain = [[0, 1], [0, "1/2"]]          # [[x0, x1], [y0, y1]]; default the unit square
//! eps = "1/8"
//! coefficient = "oscillatory-2d"         # a preset, or an expression in y1, y2
//! period = [1, 1]                        # period of a in (y1, y2); expressions only
//! forcing = "1"                          # f(x, y); may use eps and pi
//! boundary = "0"                         # g(x, y) on the whole boundary (default 0)
//! exact = "..."                          # optional exact u(x, y)
//! # or, instead of forcing/boundary/exact:
//! manufactured = "sin(pi*x)*sin(pi*y)"   # f = −∇·(a∇u), g = u, exact = u
//! ```
//!
//! The binary's 1-D `ProblemConfig` lives in the binary crate; this one lives here so that the
//! problem crate's tests can pin its rules, and the binary only has to deserialize it (e.g.
//! with its `parse_toml`, which suggests the nearest field name for an unknown one).

use serde::{Deserialize, Serialize};

use crate::error::ProblemError;
use crate::two_d::coefficient2d::Coefficient2d;
use crate::two_d::expr2::{parse_constant, ScalarFn2};
use crate::two_d::problem2d::{Forcing2d, Problem2d, Rect};

/// A TOML number, or a string holding a constant expression ("1/32", "2*pi").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberExpr {
    Number(f64),
    Text(String),
}

impl NumberExpr {
    pub fn value(&self, field: &str) -> Result<f64, ProblemError> {
        match self {
            NumberExpr::Number(v) if v.is_finite() => Ok(*v),
            NumberExpr::Number(v) => Err(ProblemError::InvalidValue {
                field: field.to_owned(),
                value: *v,
                requirement: "finite",
            }),
            NumberExpr::Text(s) => parse_constant(s, field),
        }
    }
}

/// The fields of a 2-D `[problem]` table; unknown keys are refused by serde.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem2dConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<[[NumberExpr; 2]; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eps: Option<NumberExpr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coefficient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<[NumberExpr; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forcing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufactured: Option<String>,
}

const KIND: &str = "2-d darcy";

impl Problem2dConfig {
    /// Builds and validates the problem; `eps_override` (a command-line `--eps`) takes
    /// precedence over the table's. Errors name the field as `problem.<key>`.
    pub fn build(&self, eps_override: Option<f64>) -> Result<Problem2d, ProblemError> {
        let eps = match (eps_override, &self.eps) {
            (Some(e), _) => e,
            (None, Some(e)) => e.value("problem.eps")?,
            (None, None) => return Err(missing("problem.eps")),
        };
        if !(eps.is_finite() && eps > 0.0) {
            return Err(ProblemError::InvalidValue {
                field: "problem.eps".to_owned(),
                value: eps,
                requirement: "finite and > 0",
            });
        }
        let domain = match &self.domain {
            Some([[x0, x1], [y0, y1]]) => Rect {
                x: [
                    x0.value("problem.domain[0][0]")?,
                    x1.value("problem.domain[0][1]")?,
                ],
                y: [
                    y0.value("problem.domain[1][0]")?,
                    y1.value("problem.domain[1][1]")?,
                ],
            },
            None => Rect {
                x: [0.0, 1.0],
                y: [0.0, 1.0],
            },
        };
        domain.check().map_err(|e| match e {
            ProblemError::InvalidInterval { field, lo, hi } => ProblemError::InvalidInterval {
                field: format!("problem.{field}"),
                lo,
                hi,
            },
            other => other,
        })?;
        let coef = self.coefficient()?;
        let consts = [("eps", eps)];
        let parse = |src: &str, field: &str, second: bool| {
            ScalarFn2::parse_with(src, ["x", "y"], &consts, second).map_err(|e| e.in_field(field))
        };
        let problem = match &self.manufactured {
            Some(u) => {
                for (other, given) in [
                    ("problem.forcing", self.forcing.is_some()),
                    ("problem.boundary", self.boundary.is_some()),
                    ("problem.exact", self.exact.is_some()),
                ] {
                    if given {
                        return Err(ProblemError::ConflictingFields {
                            field: "problem.manufactured".to_owned(),
                            other: other.to_owned(),
                            reason: "a manufactured solution u defines f = -div(a grad u), \
                                     g = u and exact = u",
                        });
                    }
                }
                let mut p = Problem2d::manufactured(domain, eps, coef, u)
                    .map_err(|e| e.in_field("problem.manufactured"))?;
                p.name = format!("manufactured {u}");
                p
            }
            None => {
                let forcing = self
                    .forcing
                    .as_deref()
                    .ok_or_else(|| missing("problem.forcing (or problem.manufactured)"))?;
                Problem2d {
                    name: "custom-2d".to_owned(),
                    domain,
                    eps,
                    coef,
                    forcing: Forcing2d::Expr(parse(forcing, "problem.forcing", false)?),
                    boundary: match &self.boundary {
                        Some(g) => parse(g, "problem.boundary", false)?,
                        None => ScalarFn2::constant(0.0, ["x", "y"]),
                    },
                    exact: match &self.exact {
                        Some(u) => Some(parse(u, "problem.exact", false)?),
                        None => None,
                    },
                }
            }
        };
        problem.validate().map_err(|e| match e {
            ProblemError::NonFinite2d {
                field,
                point,
                value,
            } => ProblemError::NonFinite2d {
                field: format!("problem.{field}"),
                point,
                value,
            },
            ProblemError::NonPositiveCoefficient2d { expr, y, min, .. } => {
                ProblemError::NonPositiveCoefficient2d {
                    field: "problem.coefficient".to_owned(),
                    expr,
                    y,
                    min,
                }
            }
            other => other,
        })?;
        Ok(problem)
    }

    fn coefficient(&self) -> Result<Coefficient2d, ProblemError> {
        let name = self
            .coefficient
            .as_deref()
            .ok_or_else(|| missing("problem.coefficient"))?;
        match (&self.period, Coefficient2d::is_preset(name)) {
            (Some(_), true) => Err(ProblemError::ConflictingFields {
                field: "problem.period".to_owned(),
                other: "problem.coefficient".to_owned(),
                reason: "a preset coefficient has its own period",
            }),
            (Some([p1, p2]), false) => {
                let period = [
                    p1.value("problem.period[0]")?,
                    p2.value("problem.period[1]")?,
                ];
                Coefficient2d::parse(name, period).map_err(|e| match e {
                    ProblemError::InvalidPeriod { field, value } => ProblemError::InvalidPeriod {
                        field: format!("problem.{field}"),
                        value,
                    },
                    other => other.in_field("problem.coefficient"),
                })
            }
            (None, _) => {
                Coefficient2d::from_name(name).map_err(|e| e.in_field("problem.coefficient"))
            }
        }
    }
}

fn missing(field: &str) -> ProblemError {
    ProblemError::MissingField {
        field: field.to_owned(),
        kind: KIND.to_owned(),
    }
}
