//! The periodic coefficient a(y₁, y₂) of the fast variable y = x/ε in two dimensions.

use crate::error::ProblemError;
use crate::two_d::expr2::ScalarFn2;

/// Intervals per period and direction of the positivity scan (2¹⁸ evaluations, a few tens of
/// milliseconds): as in 1-D the scan is only the first net; the local minima it finds are then
/// refined by descent along the symbolic gradient, so a dip narrower than the scan spacing is
/// still found as long as the grid sees its basin.
pub const POSITIVITY_SCAN_2D: usize = 512;

/// Local minima of the scan refined by descent (the lowest ones first).
const REFINED_MINIMA: usize = 32;
/// Descent steps per local minimum; every step either lowers a or halves the step length, and
/// starts at most one scan interval long.
const DESCENT_STEPS: usize = 200;

/// `"oscillatory-2d"`: a genuinely two-dimensional smooth coefficient, 1 ≤ a ≤ 3, period 1 in
/// both directions (issue 18's example).
const OSCILLATORY_2D: &str = "2 + sin(2*pi*y1)*cos(2*pi*y2)";
/// `"laminate-4.1"`: the paper's §4.1 coefficient as a laminate in y₁, so that a 2-D run can be
/// checked against the 1-D theory (ā₁₁ = harmonic mean, ā₂₂ = arithmetic mean).
const LAMINATE_4_1: &str = "1/(2.1 + 2*sin(2*pi*y1))";

/// Names accepted by [`Coefficient2d::from_name`] besides an expression in `y1`, `y2`.
pub const COEFFICIENT_2D_NAMES: &[&str] = &["oscillatory-2d", "laminate-4.1"];

/// The smallest value of a found over the period cell, and where.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoefficientMin2d {
    pub y: [f64; 2],
    pub value: f64,
}

/// Periodic coefficient a(y₁, y₂) with its symbolic gradient and its period `[p₁, p₂]` in y.
///
/// As in 1-D, y = x/ε, so a(x/ε) has period ε·pₖ in xₖ: the period is part of the coefficient
/// because it sets the length scales that collocation grids and the reference solver must
/// resolve.
#[derive(Clone, Debug)]
pub struct Coefficient2d {
    name: String,
    func: ScalarFn2,
    period: [f64; 2],
}

impl Coefficient2d {
    /// A coefficient given as an expression in `y1`, `y2` with the given period.
    pub fn parse(expr: &str, period: [f64; 2]) -> Result<Coefficient2d, ProblemError> {
        for (k, &p) in period.iter().enumerate() {
            if !(p.is_finite() && p > 0.0) {
                return Err(ProblemError::InvalidPeriod {
                    field: format!("period[{k}]"),
                    value: p,
                });
            }
        }
        let func = ScalarFn2::parse_with(expr, ["y1", "y2"], &[], false)
            .map_err(|e| e.in_field("coefficient"))?;
        Ok(Coefficient2d {
            name: expr.to_owned(),
            func,
            period,
        })
    }

    /// A preset name of [`COEFFICIENT_2D_NAMES`] (period [1, 1]), or an expression in `y1`,
    /// `y2` of period [1, 1].
    pub fn from_name(name_or_expr: &str) -> Result<Coefficient2d, ProblemError> {
        let name = name_or_expr.trim();
        let expr = match name {
            "oscillatory-2d" => OSCILLATORY_2D,
            "laminate-4.1" => LAMINATE_4_1,
            other => other,
        };
        let mut c = Coefficient2d::parse(expr, [1.0, 1.0])?;
        c.name = name.to_owned();
        Ok(c)
    }

    /// `"2 + sin(2*pi*y1)*cos(2*pi*y2)"`, period [1, 1].
    pub fn oscillatory_2d() -> Result<Coefficient2d, ProblemError> {
        Coefficient2d::from_name("oscillatory-2d")
    }

    /// Whether `name` is a preset rather than an expression (the period of a preset is fixed).
    pub fn is_preset(name: &str) -> bool {
        COEFFICIENT_2D_NAMES.contains(&name.trim())
    }

    /// The preset name, or the expression.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The expression in `y1`, `y2`.
    pub fn source(&self) -> &str {
        self.func.source()
    }

    pub fn period(&self) -> [f64; 2] {
        self.period
    }

    /// a(y).
    pub fn a(&self, y: [f64; 2]) -> f64 {
        self.func.eval(y)
    }

    /// (∂₁a, ∂₂a)(y), symbolic.
    pub fn grad(&self, y: [f64; 2]) -> [f64; 2] {
        self.func.grad(y)
    }

    /// Checks that a is finite and > 0 over the period cell [0, p₁] × [0, p₂] (the declared
    /// period is trusted, as in 1-D) and returns the smallest value found and where.
    ///
    /// The cell is scanned on [`POSITIVITY_SCAN_2D`]² points; from each of the lowest
    /// discrete local minima (up to 32) a descent along −∇a (symbolic) with a backtracking
    /// step locates the continuous minimum nearby, so a minimum between scan points, or a
    /// dip whose basin the scan touches, is evaluated where it is lowest.
    ///
    /// Errors name the field `coefficient`: [`ProblemError::NonPositiveCoefficient2d`] with the
    /// point y where a ≤ 0, [`ProblemError::NonFinite2d`] where a is infinite or NaN.
    pub fn check_positive(&self) -> Result<CoefficientMin2d, ProblemError> {
        let n = POSITIVITY_SCAN_2D;
        let h = [self.period[0] / n as f64, self.period[1] / n as f64];
        let at = |i: usize, j: usize| [i as f64 * h[0], j as f64 * h[1]];
        let mut values = vec![0.0; n * n];
        let mut min = CoefficientMin2d {
            y: [0.0, 0.0],
            value: f64::INFINITY,
        };
        for i in 0..n {
            for j in 0..n {
                let y = at(i, j);
                let v = self.a_checked(y)?;
                values[i * n + j] = v;
                if v < min.value {
                    min = CoefficientMin2d { y, value: v };
                }
            }
        }
        if min.value <= 0.0 {
            return Err(self.non_positive(min));
        }
        // Discrete local minima (periodic neighbours), lowest first.
        let mut minima: Vec<(f64, usize, usize)> = Vec::new();
        for i in 0..n {
            for j in 0..n {
                let v = values[i * n + j];
                let nb = [
                    values[((i + 1) % n) * n + j],
                    values[((i + n - 1) % n) * n + j],
                    values[i * n + (j + 1) % n],
                    values[i * n + (j + n - 1) % n],
                ];
                if nb.iter().all(|&w| v <= w) {
                    minima.push((v, i, j));
                }
            }
        }
        minima.sort_by(|p, q| p.0.total_cmp(&q.0));
        for &(v, i, j) in minima.iter().take(REFINED_MINIMA) {
            let found = self.descend(at(i, j), v, h)?;
            if found.value < min.value {
                min = found;
            }
            if min.value <= 0.0 {
                return Err(self.non_positive(min));
            }
        }
        Ok(min)
    }

    /// Steepest descent with backtracking from `y0` (where a = `v0`); each step is at most one
    /// scan interval long in each direction, so it stays in the basin the scan found.
    fn descend(
        &self,
        y0: [f64; 2],
        v0: f64,
        h: [f64; 2],
    ) -> Result<CoefficientMin2d, ProblemError> {
        let mut best = CoefficientMin2d { y: y0, value: v0 };
        let mut step = 1.0;
        for _ in 0..DESCENT_STEPS {
            let g = self.grad(best.y);
            if !(g[0].is_finite() && g[1].is_finite()) || (g[0] == 0.0 && g[1] == 0.0) {
                break;
            }
            // A step of length `step` scan intervals along −∇a, in scan-interval units.
            let gn = ((g[0] * h[0]).powi(2) + (g[1] * h[1]).powi(2)).sqrt();
            let y = [
                best.y[0] - step * h[0] * h[0] * g[0] / gn,
                best.y[1] - step * h[1] * h[1] * g[1] / gn,
            ];
            let v = self.a_checked(y)?;
            if v < best.value {
                best = CoefficientMin2d { y, value: v };
                if v <= 0.0 {
                    break;
                }
            } else {
                step *= 0.5;
                if step < 1e-14 {
                    break;
                }
            }
        }
        Ok(best)
    }

    fn a_checked(&self, y: [f64; 2]) -> Result<f64, ProblemError> {
        let v = self.a(y);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(ProblemError::NonFinite2d {
                field: "coefficient".to_owned(),
                point: y,
                value: v,
            })
        }
    }

    fn non_positive(&self, min: CoefficientMin2d) -> ProblemError {
        ProblemError::NonPositiveCoefficient2d {
            field: "coefficient".to_owned(),
            expr: self.func.source().to_owned(),
            y: min.y,
            min: min.value,
        }
    }
}
