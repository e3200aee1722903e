//! The periodic coefficient a(y) of the fast variable y = x/ε.

use crate::error::ProblemError;
use crate::expr::ScalarFn;
use crate::quadrature::integrate;

/// Periodic coefficient a(y) (the fast variable y = x/ε) with a'(y) and its period in y.
///
/// The period is part of the coefficient because it sets the length scale ε·P that collocation
/// grids, validation grids and the reference solver must resolve.
#[derive(Clone, Debug)]
pub struct Coefficient {
    name: String,
    func: ScalarFn,
    period: f64,
}

const PAPER_4_1: &str = "1/(2.1 + 2*sin(2*pi*y))";
const PAPER_4_2: &str = "1/(2.1 + 2*sin(y))";

/// Names accepted by [`Coefficient::from_name`] besides an expression.
pub const COEFFICIENT_NAMES: &[&str] = &["paper-4.1", "paper-4.2"];

impl Coefficient {
    /// Section 4.1 (Fig. 2, 3): a(y) = 1/(2.1 + 2 sin 2πy), period 1.
    pub fn paper_4_1() -> Coefficient {
        Coefficient::builtin("paper-4.1", PAPER_4_1, 1.0)
    }

    /// Section 4.2 (eq. 27, Fig. 4): a(y) = 1/(2.1 + 2 sin y), period 2π.
    pub fn paper_4_2() -> Coefficient {
        Coefficient::builtin("paper-4.2", PAPER_4_2, 2.0 * std::f64::consts::PI)
    }

    fn builtin(name: &str, expr: &str, period: f64) -> Coefficient {
        // The two built-in strings are constants of this file and are parsed by a unit test,
        // so this cannot fail at run time.
        #[allow(clippy::expect_used)]
        let func = ScalarFn::parse(expr, "y").expect("built-in coefficient expression parses");
        Coefficient {
            name: name.to_owned(),
            func,
            period,
        }
    }

    /// A coefficient given as an expression in `y` with the given period (in y).
    pub fn parse(expr: &str, period: f64) -> Result<Coefficient, ProblemError> {
        if !(period.is_finite() && period > 0.0) {
            return Err(ProblemError::InvalidValue {
                field: "coefficient.period".to_owned(),
                value: period,
                requirement: "finite and > 0",
            });
        }
        let func = ScalarFn::parse(expr, "y").map_err(|e| e.in_field("coefficient"))?;
        Ok(Coefficient {
            name: expr.to_owned(),
            func,
            period,
        })
    }

    /// `"paper-4.1"`, `"paper-4.2"`, or an expression in `y` of period 1.
    pub fn from_name(name_or_expr: &str) -> Result<Coefficient, ProblemError> {
        match name_or_expr.trim() {
            "paper-4.1" => Ok(Coefficient::paper_4_1()),
            "paper-4.2" => Ok(Coefficient::paper_4_2()),
            expr => Coefficient::parse(expr, 1.0),
        }
    }

    /// The preset name, or the expression for a parsed coefficient.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The expression in `y`.
    pub fn source(&self) -> &str {
        self.func.source()
    }

    pub fn a(&self, y: f64) -> f64 {
        self.func.eval(y)
    }

    /// a'(y), symbolic.
    pub fn da(&self, y: f64) -> f64 {
        self.func.deriv(y)
    }

    pub fn period(&self) -> f64 {
        self.period
    }

    /// ā = (1/P ∫_0^P 1/a)^{-1}, the 1-D homogenised coefficient; NaN when a is not positive
    /// and finite over a period (see [`Coefficient::try_harmonic_mean`] for the reason).
    pub fn harmonic_mean(&self) -> f64 {
        self.try_harmonic_mean().unwrap_or(f64::NAN)
    }

    /// Like [`Coefficient::harmonic_mean`], with the reason when it does not exist.
    pub fn try_harmonic_mean(&self) -> Result<f64, ProblemError> {
        let inv = |y: f64| {
            let a = self.a(y);
            if a > 0.0 {
                1.0 / a
            } else {
                f64::NAN
            }
        };
        let field = "coefficient over one period (x here is y)";
        // A grid scan first: a sign change shows up as a clear "not positive" instead of as a
        // singular 1/a that the quadrature cannot resolve.
        const SCAN: usize = 1024;
        let (min, at) = (0..=SCAN)
            .map(|i| {
                let y = self.period * i as f64 / SCAN as f64;
                (self.a(y), y)
            })
            .fold((f64::INFINITY, 0.0), |m, (v, y)| {
                if v < m.0 || v.is_nan() && !m.0.is_nan() {
                    (v, y)
                } else {
                    m
                }
            });
        if min.is_nan() {
            return Err(ProblemError::NonFinite {
                field: field.to_owned(),
                x: at,
                value: min,
            });
        }
        if min <= 0.0 {
            return Err(ProblemError::NonPositiveCoefficient {
                field: field.to_owned(),
                expr: self.func.source().to_owned(),
                x: at,
                min,
            });
        }
        let integral =
            integrate((0.0, self.period), self.period / 8.0, field, &inv).map_err(|e| match e {
                ProblemError::NonFinite { x, .. } if self.a(x) <= 0.0 => {
                    ProblemError::NonPositiveCoefficient {
                        field: field.to_owned(),
                        expr: self.func.source().to_owned(),
                        x,
                        min: self.a(x),
                    }
                }
                ProblemError::NonFinite { x, .. } => ProblemError::NonFinite {
                    field: field.to_owned(),
                    x,
                    value: self.a(x),
                },
                other => other,
            })?;
        Ok(self.period / integral)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        assert!(ScalarFn::parse(PAPER_4_1, "y").is_ok());
        assert!(ScalarFn::parse(PAPER_4_2, "y").is_ok());
    }
}
