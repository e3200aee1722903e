//! A 2-D Darcy problem −∇·(a(x/ε)∇u) = f on a rectangle with Dirichlet data on its boundary.

use crate::error::ProblemError;
use crate::two_d::coefficient2d::Coefficient2d;
use crate::two_d::expr2::ScalarFn2;
use crate::two_d::residual2d::LinearResidual2d;

/// The closed rectangle [x₀, x₁] × [y₀, y₁].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: [f64; 2],
    pub y: [f64; 2],
}

impl Rect {
    pub fn new(x: [f64; 2], y: [f64; 2]) -> Result<Rect, ProblemError> {
        let r = Rect { x, y };
        r.check()?;
        Ok(r)
    }

    /// Both sides finite and non-empty; the error names `domain[0]` or `domain[1]`.
    pub fn check(&self) -> Result<(), ProblemError> {
        for (k, [lo, hi]) in [self.x, self.y].into_iter().enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(ProblemError::InvalidInterval {
                    field: format!("domain[{k}]"),
                    lo,
                    hi,
                });
            }
        }
        Ok(())
    }

    /// Side lengths (x₁ − x₀, y₁ − y₀).
    pub fn size(&self) -> [f64; 2] {
        [self.x[1] - self.x[0], self.y[1] - self.y[0]]
    }

    pub fn contains(&self, p: [f64; 2]) -> bool {
        p[0] >= self.x[0] && p[0] <= self.x[1] && p[1] >= self.y[0] && p[1] <= self.y[1]
    }

    /// The point at fractions (s, t) ∈ [0, 1]² of the sides; lo(1 − s) + hi s hits both ends
    /// exactly, as the 1-D grids do.
    pub fn lerp(&self, s: f64, t: f64) -> [f64; 2] {
        [
            self.x[0] * (1.0 - s) + self.x[1] * s,
            self.y[0] * (1.0 - t) + self.y[1] * t,
        ]
    }

    pub(crate) fn out_of(&self, field: &str, p: [f64; 2]) -> ProblemError {
        ProblemError::OutOfRectangle {
            field: field.to_owned(),
            point: p,
            x: self.x,
            y: self.y,
        }
    }
}

/// The right-hand side f(x, y).
#[derive(Clone, Debug)]
pub enum Forcing2d {
    /// f given as an expression in `x`, `y`.
    Expr(ScalarFn2),
    /// f = −∇·(a(x/ε)∇u) of this u (parsed with its second derivatives), evaluated from the
    /// symbolic derivatives of u and a: f = −(a Δu + ε⁻¹(∂₁a u_x + ∂₂a u_y)), a and ∂ₖa at
    /// y = x/ε. Keeping the pieces, not one derived string, keeps the expression small and
    /// the 1/ε factor explicit.
    Manufactured(ScalarFn2),
}

/// −∇·(a(x/ε)∇u) = f on a rectangle, u = g on its boundary.
#[derive(Clone, Debug)]
pub struct Problem2d {
    pub name: String,
    pub domain: Rect,
    pub eps: f64,
    pub coef: Coefficient2d,
    pub forcing: Forcing2d,
    /// Dirichlet data g(x, y) on the whole boundary.
    pub boundary: ScalarFn2,
    /// The exact solution u(x, y) with its gradient, when known.
    pub exact: Option<ScalarFn2>,
}

/// Validation samples the interior on at least this many points per period of a and
/// direction...
const VALIDATE_PER_PERIOD: f64 = 8.0;
/// ... between these bounds per direction (the upper one keeps validation well under a second
/// even for a manufactured forcing of five expressions; the reference solver checks every
/// value it uses anyway).
const VALIDATE_MIN: usize = 64;
const VALIDATE_MAX: usize = 512;

impl Problem2d {
    /// The manufactured problem of u: f = −∇·(a(x/ε)∇u), g = u, exact = u. `u` is an
    /// expression in `x`, `y` (it may use `eps` and `pi`); its derivatives are symbolic.
    pub fn manufactured(
        domain: Rect,
        eps: f64,
        coef: Coefficient2d,
        u: &str,
    ) -> Result<Problem2d, ProblemError> {
        check_eps(eps)?;
        let u = ScalarFn2::parse_with(u, ["x", "y"], &[("eps", eps)], true)
            .map_err(|e| e.in_field("manufactured"))?;
        Ok(Problem2d {
            name: format!("manufactured {}", u.source()),
            domain,
            eps,
            coef,
            forcing: Forcing2d::Manufactured(u.clone()),
            boundary: u.clone(),
            exact: Some(u),
        })
    }

    /// ε·pₖ: the period of a(x/ε) in xₖ, the length scale grids must resolve.
    pub fn length_scales(&self) -> [f64; 2] {
        let p = self.coef.period();
        [self.eps * p[0], self.eps * p[1]]
    }

    /// a(x/ε) at the point x.
    pub fn a_at(&self, p: [f64; 2]) -> f64 {
        self.coef.a([p[0] / self.eps, p[1] / self.eps])
    }

    /// f at the point x.
    pub fn forcing_at(&self, p: [f64; 2]) -> f64 {
        match &self.forcing {
            Forcing2d::Expr(f) => f.eval(p),
            Forcing2d::Manufactured(u) => {
                let y = [p[0] / self.eps, p[1] / self.eps];
                let a = self.coef.a(y);
                let da = self.coef.grad(y);
                let du = u.grad(p);
                let lap = u.laplacian(p).unwrap_or(f64::NAN);
                -(a * lap + (da[0] * du[0] + da[1] * du[1]) / self.eps)
            }
        }
    }

    /// Name of the forcing in messages.
    fn forcing_field(&self) -> &'static str {
        match self.forcing {
            Forcing2d::Expr(_) => "forcing",
            Forcing2d::Manufactured(_) => "manufactured",
        }
    }

    /// Checks what would make training or a reference solve meaningless: a bad rectangle or
    /// ε, a ≤ 0 or non-finite over its period cell ([`Coefficient2d::check_positive`]), and
    /// non-finite f, g or exact u on sample grids (f and u on an interior grid of 8 points per
    /// period of a and direction, between 64 and 512 per direction; g on 4096 points per side).
    pub fn validate(&self) -> Result<(), ProblemError> {
        self.domain.check()?;
        check_eps(self.eps)?;
        self.coef.check_positive()?;
        let size = self.domain.size();
        let scales = self.length_scales();
        let n = |k: usize| {
            let want = (VALIDATE_PER_PERIOD * size[k] / scales[k]).ceil();
            if want.is_nan() {
                VALIDATE_MAX
            } else {
                (want as usize).clamp(VALIDATE_MIN, VALIDATE_MAX)
            }
        };
        let (nx, ny) = (n(0), n(1));
        for i in 0..=nx {
            for j in 0..=ny {
                let p = self.domain.lerp(i as f64 / nx as f64, j as f64 / ny as f64);
                finite(self.forcing_field(), p, self.forcing_at(p))?;
                if let Some(u) = &self.exact {
                    finite("exact", p, u.eval(p))?;
                    let g = u.grad(p);
                    finite("exact (gradient)", p, g[0])?;
                    finite("exact (gradient)", p, g[1])?;
                }
            }
        }
        const SIDE: usize = 4096;
        for k in 0..=SIDE {
            let t = k as f64 / SIDE as f64;
            for p in [
                self.domain.lerp(t, 0.0),
                self.domain.lerp(t, 1.0),
                self.domain.lerp(0.0, t),
                self.domain.lerp(1.0, t),
            ] {
                finite("boundary", p, self.boundary.eval(p))?;
            }
        }
        Ok(())
    }

    /// PDE rows at the collocation points: c_hess = (−a, −a), c_grad = −∇_y a / ε (a and its
    /// gradient at y = x/ε), c_u = 0, rhs = f. Every value is checked to be finite.
    pub fn pde_rows(&self, points: &[[f64; 2]]) -> Result<LinearResidual2d, ProblemError> {
        check_points("collocation points", points)?;
        let mut rows = LinearResidual2d::zeros(points);
        for (i, &p) in points.iter().enumerate() {
            let y = [p[0] / self.eps, p[1] / self.eps];
            let a = finite("coefficient", p, self.coef.a(y))?;
            let da = self.coef.grad(y);
            rows.c_hess[0][i] = -a;
            rows.c_hess[1][i] = -a;
            for (c, d) in rows.c_grad.iter_mut().zip(da) {
                c[i] = -finite("coefficient (gradient)", p, d)? / self.eps;
            }
            rows.rhs[i] = finite(self.forcing_field(), p, self.forcing_at(p))?;
        }
        Ok(rows)
    }

    /// Dirichlet rows u = g at the given boundary points (see [`crate::boundary_points`]);
    /// a point off the boundary is refused, since g is only data there.
    pub fn boundary_rows(&self, points: &[[f64; 2]]) -> Result<LinearResidual2d, ProblemError> {
        check_points("boundary points", points)?;
        let mut rows = LinearResidual2d::zeros(points);
        let r = &self.domain;
        let tol = 1e-12 * (r.size()[0] + r.size()[1]);
        for (i, &p) in points.iter().enumerate() {
            let on_side =
                |v: f64, [lo, hi]: [f64; 2]| (v - lo).abs() <= tol || (v - hi).abs() <= tol;
            if !r.contains(p) || !(on_side(p[0], r.x) || on_side(p[1], r.y)) {
                return Err(r.out_of("boundary points (off the boundary)", p));
            }
            rows.c_u[i] = 1.0;
            rows.rhs[i] = finite("boundary", p, self.boundary.eval(p))?;
        }
        Ok(rows)
    }

    /// (u, ∇u) of the exact solution at the points, or `None` when it is not known.
    pub fn exact_solution(&self, points: &[[f64; 2]]) -> Option<Vec<(f64, [f64; 2])>> {
        self.exact
            .as_ref()
            .map(|u| points.iter().map(|&p| (u.eval(p), u.grad(p))).collect())
    }
}

fn check_eps(eps: f64) -> Result<(), ProblemError> {
    if eps.is_finite() && eps > 0.0 {
        Ok(())
    } else {
        Err(ProblemError::InvalidValue {
            field: "eps".to_owned(),
            value: eps,
            requirement: "finite and > 0",
        })
    }
}

fn check_points(field: &str, points: &[[f64; 2]]) -> Result<(), ProblemError> {
    if points.is_empty() {
        return Err(ProblemError::EmptyPoints {
            field: field.to_owned(),
        });
    }
    for &p in points {
        finite(field, p, p[0])?;
        finite(field, p, p[1])?;
    }
    Ok(())
}

/// `value`, or the error naming `field` and the point.
pub(crate) fn finite(field: &str, point: [f64; 2], value: f64) -> Result<f64, ProblemError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ProblemError::NonFinite2d {
            field: field.to_owned(),
            point,
            value,
        })
    }
}
