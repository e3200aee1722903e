//! The 2-D reference solution: finite volumes on a grid chosen by a measured resolution rule.

use crate::error::ProblemError;
use crate::two_d::fv::{solve_dirichlet, FvGrid, FvSolution};
use crate::two_d::problem2d::Problem2d;

/// Error constant of the resolution rule: with k cells per period of a in each direction,
/// the finite-volume solution interpolated bilinearly anywhere in the domain is within
/// C·k⁻²·max|u| of u, C = [`FV_ERROR_CONSTANT`].
///
/// Measured on `oscillatory-2d` over the unit square (tests/two_d_reference.rs; max error over
/// a 101 × 101 grid of points, divided by max|u|, times k², for k = 8, 16, 32, 64):
/// * u = sin(πx) sin(πy) + xy (manufactured): 0.41, 0.49, 0.50, 0.50 at ε = 1/4 and
///   0.35, 0.36, 0.37, 0.37 at ε = 1/8;
/// * f = 1, g = 0 (no closed form; against k = 128, resp. 64): 0.68, 0.75, 0.73 at ε = 1/4,
///   0.36, 0.37 at ε = 1/8.
///
/// The constant depends on how well one period of a is resolved, not on ε. C = 1 leaves a
/// margin of ~1.3 over the largest measurement, for coefficients of a similar contrast
/// (max a / min a ≈ 3); a coefficient of much higher contrast needs its own measurement.
pub const FV_ERROR_CONSTANT: f64 = 1.0;

/// Never fewer cells per period of a than this, whatever the target: below it the harmonic
/// face means no longer see the shape of a and the k⁻² law stops holding.
pub const MIN_CELLS_PER_PERIOD: usize = 8;

/// Never fewer cells per direction than this over the whole domain (for ε of the order of the
/// domain, where the data vary on the domain scale, not on the period of a).
pub const MIN_CELLS_PER_SIDE: usize = 64;

/// A reference for a PINN error must be this many times more accurate than the error it
/// measures.
pub const REFERENCE_MARGIN: f64 = 100.0;

/// The resolution rule: cells per period of a (in each direction) for a relative max-norm
/// error `target`, k = ⌈√(C/target)⌉ with C = [`FV_ERROR_CONSTANT`], at least
/// [`MIN_CELLS_PER_PERIOD`]. For a PINN whose relative error is e, ask for target = e/100
/// ([`REFERENCE_MARGIN`]); e.g. e = 1e-2 gives target 1e-4 and k = 100.
pub fn cells_per_period(target: f64) -> Result<usize, ProblemError> {
    if !(target.is_finite() && target > 0.0 && target < 1.0) {
        return Err(ProblemError::InvalidValue {
            field: "reference accuracy".to_owned(),
            value: target,
            requirement: "finite, > 0 and < 1",
        });
    }
    let k = (FV_ERROR_CONSTANT / target).sqrt().ceil();
    Ok((k as usize).max(MIN_CELLS_PER_PERIOD))
}

impl Problem2d {
    /// The reference grid for a relative max-norm error `target`: [`cells_per_period`] cells
    /// per period ε·pₖ of a in each direction, at least [`MIN_CELLS_PER_SIDE`] per side;
    /// [`ProblemError::GridTooLarge`] when it would exceed the solver's memory limit.
    pub fn reference_grid(&self, target: f64) -> Result<FvGrid, ProblemError> {
        let k = cells_per_period(target)? as f64;
        let size = self.domain.size();
        let scales = self.length_scales();
        let mut n = [0usize; 2];
        for d in 0..2 {
            let cells = (k * size[d] / scales[d])
                .ceil()
                .max(MIN_CELLS_PER_SIDE as f64);
            if !cells.is_finite() || cells > 1e9 {
                return Err(ProblemError::GridTooLarge {
                    field: "reference grid".to_owned(),
                    unknowns: f64::INFINITY,
                    limit: crate::two_d::fv::MAX_UNKNOWNS,
                    hint: "eps is far too small for this domain",
                });
            }
            n[d] = cells as usize;
        }
        FvGrid::new(self.domain, n)
    }

    /// The finite-volume solution on `grid`, with a(x/ε) at cell centres.
    pub fn solve_fv(&self, grid: FvGrid) -> Result<FvSolution, ProblemError> {
        let [nx, ny] = grid.n;
        let mut cell_a = Vec::with_capacity(grid.unknowns());
        for j in 0..ny {
            for i in 0..nx {
                let a = self.a_at(grid.centre(i, j));
                cell_a.push([a, a]);
            }
        }
        solve_dirichlet(grid, &cell_a, &|p| self.forcing_at(p), &|p| {
            self.boundary.eval(p)
        })
    }

    /// u at the points: the closed form when `exact` is known, otherwise the finite-volume
    /// solution on [`Problem2d::reference_grid`] for the relative accuracy `target`,
    /// interpolated bilinearly.
    pub fn reference_solution(
        &self,
        points: &[[f64; 2]],
        target: f64,
    ) -> Result<Vec<f64>, ProblemError> {
        if points.is_empty() {
            return Err(ProblemError::EmptyPoints {
                field: "points".to_owned(),
            });
        }
        if let Some(u) = &self.exact {
            return Ok(points.iter().map(|&p| u.eval(p)).collect());
        }
        self.solve_fv(self.reference_grid(target)?)?
            .interpolate(points)
    }
}
