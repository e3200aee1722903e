//! The run configuration: what `--config FILE.toml` reads and what every run folder records as
//! `config.toml` (resolved: presets expanded into numbers, defaults filled in).
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

use anyhow::{bail, Context, Result};
use mspinn_problem::{Coefficient, OperatorKind, Problem, ScalarFn};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::args::parse_number;

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
    pub fn value(&self, field: &str) -> Result<f64> {
        match self {
            NumberOrString::Number(x) => Ok(*x),
            NumberOrString::Text(s) => {
                // Allow k*pi as well as the fractions parse_number takes.
                if let Some(k) = s.trim().strip_suffix("*pi") {
                    Ok(parse_number(k).with_context(|| field.to_string())? * std::f64::consts::PI)
                } else {
                    parse_number(s).with_context(|| field.to_string())
                }
            }
        }
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

    /// Builds and validates the problem, with an `--eps` given on the command line taking
    /// precedence over the file's.
    pub fn build(&self, eps_override: Option<f64>) -> Result<Problem> {
        let eps = match (eps_override, &self.eps) {
            (Some(e), _) => Some(e),
            (None, Some(e)) => Some(e.value("problem.eps")?),
            (None, None) => None,
        };
        if let Some(name) = &self.preset {
            return Problem::preset(name, eps).with_context(|| format!("preset {name:?}"));
        }
        let kind = self
            .kind
            .context("problem.kind is required without a preset (darcy, poisson or regression)")?;
        let domain = match &self.domain {
            Some([a, b]) => (a.value("problem.domain[0]")?, b.value("problem.domain[1]")?),
            None => (-std::f64::consts::PI, std::f64::consts::PI),
        };
        let consts: Vec<(&str, f64)> = eps.map(|e| vec![("eps", e)]).unwrap_or_default();
        let forcing_src = self
            .forcing
            .as_deref()
            .context("problem.forcing is required (f(x), or the target for regression)")?;
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
                (None, OperatorKind::Darcy) => bail!("problem.coefficient is required for darcy"),
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
        p.validate().context("problem")?;
        Ok(p)
    }
}

/// Parses a TOML file's text; an unknown table or key (every config table denies them) is an
/// error naming the nearest valid name: "unknown field `trainig` … did you mean `training`?".
pub fn parse_toml<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let msg = e.to_string();
        match nearest_field(&msg) {
            Some((bad, near)) => anyhow::anyhow!("{what}: {msg}did you mean `{near}` for `{bad}`?"),
            None => anyhow::anyhow!("{what}: {msg}"),
        }
    })
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), the unknown
/// name and the valid one nearest to it in edit distance.
pub fn nearest_field(msg: &str) -> Option<(String, String)> {
    let rest = &msg[msg.find("unknown field `")? + "unknown field `".len()..];
    let end = rest.find('`')?;
    let bad = &rest[..end];
    let after = &rest[end + 1..];
    let line = after.lines().next().unwrap_or("");
    let expected = &line[line.find("expected")?..];
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    names
        .into_iter()
        .min_by_key(|n| edit_distance(bad, n))
        .map(|n| (bad.to_string(), n.to_string()))
}

/// Levenshtein distance between two strings (by chars).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("trainig", "training"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("widht", "width"), 2);
    }

    #[test]
    fn the_nearest_field_is_suggested() {
        let m =
            "unknown field `trainig`, expected one of `problem`, `network`, `points`, `training`\n";
        assert_eq!(
            nearest_field(m),
            Some(("trainig".into(), "training".into()))
        );
        assert_eq!(nearest_field("missing field `x`"), None);
    }
}
