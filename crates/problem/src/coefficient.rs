//! The periodic coefficient a(y) of the fast variable y = x/ε.

use crate::error::ProblemError;
use crate::expr::ScalarFn;
use crate::quadrature::{for_each_panel, integrate};

/// Intervals per period of the fine positivity scan (see [`Coefficient::check_positive`]).
/// With a' evaluated at every scan point, a dip is found as long as a' is representable (not
/// underflowed to 0) at one of the two scan points around it: for a Gaussian dip
/// 1 − c·exp(−k (y − y₀)²) in a period-1 coefficient that holds up to k ≈ 745·(2·16384)² ≈ 8e11,
/// i.e. dips down to a width of ~1e-6 periods; the reference quadrature's nodes (96 per period
/// before adaptive refinement) would miss any dip narrower than ~1e-2 periods.
pub const POSITIVITY_SCAN_PER_PERIOD: usize = 1 << 14;

/// Intervals per period of the coarse scan over the whole y-range, when that range is longer
/// than the one period scanned finely (the grid [`crate::Problem::validate`] always used).
const COARSE_SCAN_PER_PERIOD: f64 = 32.0;

/// ... and at least this many intervals in all.
const COARSE_SCAN_MIN: usize = 2000;

/// Scan intervals spent on the whole y-range beyond its first period (a few tens of ms).
const WHOLE_RANGE_BUDGET: f64 = (1u64 << 20) as f64;

/// Refuse coarse scans beyond this many intervals rather than loop for minutes.
const SCAN_MAX: f64 = 1e8;

/// Bisection steps allowed when locating a critical point of a: enough to reach adjacent
/// floating-point numbers from any bracket that does not straddle 0 by many binades.
const BISECTION_STEPS: usize = 200;

/// Initial panels of the reference solver per period of a (its `PANELS_PER_SCALE`): the
/// positivity check refines 1/a on the same panels, so it sees at least what the solver sees.
const SOLVER_PANELS_PER_PERIOD: f64 = 4.0;

/// The smallest value found of a(y) on an interval and where it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoefficientMin {
    pub y: f64,
    pub value: f64,
}

impl CoefficientMin {
    fn update(&mut self, y: f64, value: f64) {
        if value < self.value {
            *self = CoefficientMin { y, value };
        }
    }
}

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
            return Err(ProblemError::InvalidPeriod {
                field: "period".to_owned(),
                value: period,
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
        // The positivity check first: a sign change, or a dip narrower than the quadrature
        // would resolve, shows up as a clear "not positive" instead of as a singular 1/a.
        self.check_positive((0.0, self.period))?;
        let integral =
            integrate((0.0, self.period), self.period / 8.0, field, &inv).map_err(|e| match e {
                ProblemError::NonFinite { x, .. } if self.a(x) <= 0.0 => {
                    ProblemError::NonPositiveCoefficient {
                        field: "coefficient".to_owned(),
                        expr: self.func.source().to_owned(),
                        x: f64::NAN,
                        y: x,
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

impl Coefficient {
    /// Checks that a(y) is finite and > 0 for every y in `range` (y is the fast variable x/ε),
    /// robustly enough that a dip narrower than the reference solver's panels is found, and
    /// returns the smallest value found and where.
    ///
    /// * One period of the range (all of it when it is shorter) is scanned on
    ///   [`POSITIVITY_SCAN_PER_PERIOD`] intervals per period; a longer range as a whole on as
    ///   many intervals as a budget of 2²⁰ allows, never fewer than 32 per period (the declared
    ///   period is trusted for the fine scan; an expression that is not periodic still has its
    ///   other periods looked at).
    /// * On every scan interval where a' (symbolic) goes from < 0 to ≥ 0, or from ≤ 0 to > 0,
    ///   a local minimum of a lies in between: it is located by bisection on the sign of a'
    ///   down to adjacent floating-point numbers, and a is evaluated there. The ends of the
    ///   range are scan points.
    /// * Finally 1/a is refined on the reference solver's own adaptive panels (P/4 wide before
    ///   bisection) over the finely scanned period: what the solver would sample is sampled, and
    ///   a feature the solver could not resolve (a kink, a spike narrower than its finest panel)
    ///   is refused as [`ProblemError::UnresolvableCoefficient`].
    ///
    /// Errors name the field `coefficient` and give y (x is left NaN for the caller to fill):
    /// [`ProblemError::NonPositiveCoefficient`] with the y where a ≤ 0 and a(y),
    /// [`ProblemError::NonFinite`] (with x = y) where a is infinite or NaN.
    pub fn check_positive(&self, range: (f64, f64)) -> Result<CoefficientMin, ProblemError> {
        let (lo, hi) = range;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(ProblemError::InvalidDomain { a: lo, b: hi });
        }
        let p = self.period;
        let fine_hi = if hi - lo <= p { hi } else { lo + p };
        let fine = ((fine_hi - lo) / p * POSITIVITY_SCAN_PER_PERIOD as f64).ceil();
        let mut min = self.scan_min((lo, fine_hi), (fine as usize).max(16))?;
        if fine_hi < hi {
            let periods = (hi - lo) / p;
            let coarse = (COARSE_SCAN_PER_PERIOD * periods).ceil();
            if coarse.is_nan() || coarse > SCAN_MAX {
                return Err(ProblemError::InvalidValue {
                    field: "coefficient.period".to_owned(),
                    value: p,
                    requirement: "large enough that the domain spans at most a few million periods",
                });
            }
            // As fine as the budget allows, never coarser than the validation grid: a declared
            // period is trusted for the fine scan, but an expression that is not periodic still
            // has its other periods looked at closely.
            let intervals = (POSITIVITY_SCAN_PER_PERIOD as f64 * periods)
                .min(WHOLE_RANGE_BUDGET)
                .max(coarse)
                .ceil();
            let m = self.scan_min((lo, hi), (intervals as usize).max(COARSE_SCAN_MIN))?;
            min.update(m.y, m.value);
        }
        if min.value <= 0.0 {
            return Err(self.non_positive(min));
        }
        if fine_hi > lo {
            self.refine_on_solver_panels((lo, fine_hi), &mut min)?;
        }
        Ok(min)
    }

    fn non_positive(&self, min: CoefficientMin) -> ProblemError {
        ProblemError::NonPositiveCoefficient {
            field: "coefficient".to_owned(),
            expr: self.func.source().to_owned(),
            x: f64::NAN,
            y: min.y,
            min: min.value,
        }
    }

    /// a(y), or the error for a non-finite value.
    fn a_checked(&self, y: f64) -> Result<f64, ProblemError> {
        let v = self.a(y);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(ProblemError::NonFinite {
                field: "coefficient".to_owned(),
                x: y,
                value: v,
            })
        }
    }

    /// The minimum of a over a uniform grid of `intervals` intervals on [lo, hi], refined at
    /// every critical point of a that the sign of a' brackets between two grid points.
    fn scan_min(
        &self,
        (lo, hi): (f64, f64),
        intervals: usize,
    ) -> Result<CoefficientMin, ProblemError> {
        let at = |i: usize| {
            if i == intervals {
                hi
            } else {
                lo + (hi - lo) * (i as f64 / intervals as f64)
            }
        };
        let mut min = CoefficientMin {
            y: lo,
            value: f64::INFINITY,
        };
        let mut prev: Option<(f64, f64)> = None;
        for i in 0..=intervals {
            let y = at(i);
            min.update(y, self.a_checked(y)?);
            let d = self.da(y);
            if let Some((y0, d0)) = prev {
                // a decreasing (or flat) at y0 and no longer decreasing (or increasing) at y:
                // a has a local minimum in between, possibly far narrower than the grid.
                if d0 < 0.0 && d >= 0.0 {
                    self.bisect_min(y0, y, |t| t < 0.0, &mut min)?;
                } else if d0 == 0.0 && d > 0.0 {
                    self.bisect_min(y0, y, |t| t <= 0.0, &mut min)?;
                }
            }
            prev = (!d.is_nan()).then_some((y, d));
        }
        Ok(min)
    }

    /// Bisection for the point where `decreasing(a')` stops holding, from `l` (where it holds)
    /// to `r` (where it does not), down to adjacent floating-point numbers; a is evaluated at
    /// every midpoint, so the minimum is found even where a' is NaN somewhere inside.
    fn bisect_min(
        &self,
        mut l: f64,
        mut r: f64,
        decreasing: impl Fn(f64) -> bool,
        min: &mut CoefficientMin,
    ) -> Result<(), ProblemError> {
        for _ in 0..BISECTION_STEPS {
            let m = l + 0.5 * (r - l);
            if !(m > l && m < r) {
                break;
            }
            min.update(m, self.a_checked(m)?);
            let d = self.da(m);
            if d.is_nan() {
                break;
            }
            if decreasing(d) {
                l = m;
            } else {
                r = m;
            }
        }
        for y in [l, r] {
            min.update(y, self.a_checked(y)?);
        }
        Ok(())
    }

    /// Samples 1/a on the reference solver's adaptive panels over `window`; a ≤ 0 at a node is
    /// [`ProblemError::NonPositiveCoefficient`], a panel the solver could not resolve is
    /// [`ProblemError::UnresolvableCoefficient`].
    fn refine_on_solver_panels(
        &self,
        window: (f64, f64),
        min: &mut CoefficientMin,
    ) -> Result<(), ProblemError> {
        let mut found = *min;
        let result = for_each_panel(
            window,
            self.period / SOLVER_PANELS_PER_PERIOD,
            ["coefficient"],
            &mut |y| {
                let v = self.a_checked(y)?;
                found.update(y, v);
                if v <= 0.0 {
                    return Err(self.non_positive(CoefficientMin { y, value: v }));
                }
                Ok([1.0 / v])
            },
            &mut |_, _, _| {},
        );
        match result {
            Ok(()) => {
                *min = found;
                Ok(())
            }
            Err(ProblemError::Unresolved { x, .. }) => Err(ProblemError::UnresolvableCoefficient {
                field: "coefficient".to_owned(),
                expr: self.func.source().to_owned(),
                y: x,
                reason: "the reference quadrature cannot resolve 1/a there even on its \
                             finest panels (a kink or a spike too narrow for it)"
                    .to_owned(),
            }),
            Err(other) => Err(other),
        }
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
