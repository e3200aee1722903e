//! A problem as a config file's `[problem]` table describes it — a preset with an optional ε, or
//! the fields (kind, domain, ε, coefficient, period, forcing, boundary, exact) with numbers that
//! may be written "1/32", "pi" or "2*pi" — and the numbers people type.
//!
//! It lives here, not in the CLI, so that every front end (`mspinn --config`, the run folders'
//! config.toml, the Python package's `Problem(...)` and `Problem.from_toml`) builds the same
//! [`Problem`] from the same description, with the same errors naming the same fields.
//!
//! ```toml
//! [problem]
//! kind = "darcy"                    # darcy | poisson | regression
//! domain = ["-pi", "pi"]            # numbers, fractions or ±pi
//! eps = "1/32"
//! coefficient = "1/(2.1 + 2*sin(y))" # a(y), or paper-4.1 / paper-4.2
//! period = "2*pi"                   # period of a in y (default 1; presets know theirs)
//! forcing = "sin(2*x)"              # f(x); may use eps and pi
//! boundary = [0.0, 0.0]
//! exact = "..."                     # optional exact solution u(x)
//! ```
//! or `preset = "twoscale-darcy"` (with optional `eps`) in place of the fields.

use serde::{Deserialize, Serialize};

use crate::coefficient::Coefficient;
use crate::error::ProblemError;
use crate::expr::ScalarFn;
use crate::problem::{OperatorKind, Problem};

/// The `[problem]` table of a run file (and of every run folder's config.toml).
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProblemConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<OperatorKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<[NumberOrString; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eps: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coefficient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forcing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<[NumberOrString; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
}

/// TOML numbers, or strings like "1/32", "pi", "2*pi".
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(f64),
    Text(String),
}

impl NumberOrString {
    /// The value; an error names `field`.
    pub fn value(&self, field: &str) -> Result<f64, ProblemError> {
        match self {
            NumberOrString::Number(x) => Ok(*x),
            NumberOrString::Text(s) => {
                // Allow k*pi as well as the fractions parse_number takes.
                let parsed = match s.trim().strip_suffix("*pi") {
                    Some(k) => parse_number(k).map(|k| k * std::f64::consts::PI),
                    None => parse_number(s),
                };
                parsed.map_err(|e| e.in_field(field))
            }
        }
    }
}

/// A number or a fraction `p/q` (`1/32`; `pi` and `-pi` alone are ±π), finite.
pub fn parse_number(s: &str) -> Result<f64, ProblemError> {
    let s = s.trim();
    let bad = |reason: String| ProblemError::Number {
        field: "number".to_owned(),
        text: s.to_owned(),
        reason,
    };
    let value = if let Some((p, q)) = s.split_once('/') {
        let p = parse_plain(p).ok_or_else(|| bad(format!("numerator {p:?} is not a number")))?;
        let q = parse_plain(q).ok_or_else(|| bad(format!("denominator {q:?} is not a number")))?;
        if q == 0.0 {
            return Err(bad("it divides by zero".to_owned()));
        }
        p / q
    } else {
        parse_plain(s).ok_or_else(|| bad("expected a number, a fraction p/q or pi".to_owned()))?
    };
    if !value.is_finite() {
        return Err(bad("it is not a finite number".to_owned()));
    }
    Ok(value)
}

fn parse_plain(s: &str) -> Option<f64> {
    match s.trim() {
        "pi" => Some(std::f64::consts::PI),
        "-pi" => Some(-std::f64::consts::PI),
        t => t.parse::<f64>().ok(),
    }
}

impl ProblemConfig {
    pub fn from_preset(name: &str, eps: Option<f64>) -> Self {
        Self {
            preset: Some(name.into()),
            eps: eps.map(NumberOrString::Number),
            ..Default::default()
        }
    }

    /// Builds and validates the problem, with an ε given on the command line (or as an
    /// argument) taking precedence over the table's.
    pub fn build(&self, eps_override: Option<f64>) -> Result<Problem, ProblemError> {
        let eps = match (eps_override, &self.eps) {
            (Some(e), _) => Some(e),
            (None, Some(e)) => Some(e.value("problem.eps")?),
            (None, None) => None,
        };
        if let Some(name) = &self.preset {
            return Problem::preset(name, eps);
        }
        let kind = self.kind.ok_or_else(|| ProblemError::Required {
            field: "problem.kind".to_owned(),
            hint: "without a preset, give darcy, poisson or regression".to_owned(),
        })?;
        let domain = match &self.domain {
            Some([a, b]) => (a.value("problem.domain[0]")?, b.value("problem.domain[1]")?),
            None => (-std::f64::consts::PI, std::f64::consts::PI),
        };
        let consts: Vec<(&str, f64)> = eps.map(|e| vec![("eps", e)]).unwrap_or_default();
        let forcing_src = self
            .forcing
            .as_deref()
            .ok_or_else(|| ProblemError::Required {
                field: "problem.forcing".to_owned(),
                hint: "f(x), or the target for regression".to_owned(),
            })?;
        let forcing = ScalarFn::parse_with(forcing_src, "x", &consts)
            .map_err(|e| e.in_field("problem.forcing"))?;
        let exact = match &self.exact {
            Some(s) => Some(
                ScalarFn::parse_with(s, "x", &consts).map_err(|e| e.in_field("problem.exact"))?,
            ),
            None => None,
        };
        let coef =
            match (&self.coefficient, kind) {
                (Some(c), _) => {
                    let period = match &self.period {
                        Some(p) => Some(p.value("problem.period")?),
                        None => None,
                    };
                    Some(match period {
                        Some(p) if c != "paper-4.1" && c != "paper-4.2" => Coefficient::parse(c, p)
                            .map_err(|e| e.in_field("problem.coefficient"))?,
                        _ => Coefficient::from_name(c)
                            .map_err(|e| e.in_field("problem.coefficient"))?,
                    })
                }
                (None, OperatorKind::Darcy) => {
                    return Err(ProblemError::MissingField {
                        field: "problem.coefficient".to_owned(),
                        kind: "darcy".to_owned(),
                    })
                }
                (None, _) => None,
            };
        let boundary = match &self.boundary {
            Some([a, b]) => (
                a.value("problem.boundary[0]")?,
                b.value("problem.boundary[1]")?,
            ),
            None => (0.0, 0.0),
        };
        let p = Problem {
            name: "custom".into(),
            kind,
            domain,
            eps,
            coef,
            forcing,
            boundary,
            exact,
            homogenization: None,
        };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fractions_and_pi() {
        assert_eq!(parse_number("1/32").unwrap(), 1.0 / 32.0);
        assert_eq!(parse_number(" -pi ").unwrap(), -std::f64::consts::PI);
        for bad in ["1/0", "abc", "nan", "1/x", ""] {
            assert!(parse_number(bad).is_err(), "{bad:?}");
        }
        let two_pi = NumberOrString::Text("2*pi".into());
        assert_eq!(two_pi.value("p").unwrap(), 2.0 * std::f64::consts::PI);
    }

    #[test]
    fn errors_name_the_field() {
        let mut c = ProblemConfig {
            kind: Some(OperatorKind::Darcy),
            eps: Some(NumberOrString::Text("1/zero".into())),
            forcing: Some("1".into()),
            coefficient: Some("2 + sin(y)".into()),
            ..Default::default()
        };
        let e = c.build(None).unwrap_err().to_string();
        assert!(e.contains("problem.eps"), "{e}");
        c.eps = Some(NumberOrString::Number(0.1));
        c.coefficient = None;
        let e = c.build(None).unwrap_err().to_string();
        assert!(e.contains("problem.coefficient"), "{e}");
        c.coefficient = Some("2 + sin(y)".into());
        c.kind = None;
        assert!(c
            .build(None)
            .unwrap_err()
            .to_string()
            .contains("problem.kind"));
    }
}
