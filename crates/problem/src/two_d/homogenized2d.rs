//! The homogenised 2-D solution ū: −∇·(ā∇ū) = f with the data of the oscillatory problem.
//!
//! ā is the constant tensor of the cell problems ([`crate::Coefficient2d::homogenized_tensor`]).
//! The solve reuses the reference solver's five-point finite volumes with the constant
//! diagonal (ā₁₁, ā₂₂) on the same kind of grid (f may still oscillate on the ε scale, as in
//! 1-D), so it is second order like the reference. An off-diagonal ā₁₂ would need a nine-point
//! cross-derivative stencil whose boundary rows break the symmetry the Cholesky solve relies
//! on; rather than silently drop it, a tensor with |ā₁₂| > 1e-8·√(ā₁₁ā₂₂) is refused with
//! [`ProblemError::OffDiagonalTensor`]. Every coefficient with a reflection symmetry
//! (a(c − y₁, y₂) = a(y₁, y₂) for some c, e.g. `oscillatory-2d` and every laminate) has
//! ā₁₂ = 0 exactly, and the discrete ā₁₂ vanishes to rounding on grids that respect it.

use crate::error::ProblemError;
use crate::two_d::cell::Tensor2;
use crate::two_d::fv::{solve_dirichlet, FvGrid, FvSolution};
use crate::two_d::problem2d::Problem2d;

/// Largest |ā₁₂|/√(ā₁₁ā₂₂) treated as zero (the cell solve's rounding is ~1e-13).
pub const OFF_DIAGONAL_TOLERANCE: f64 = 1e-8;

impl Problem2d {
    /// ā of this problem's coefficient (see [`crate::Coefficient2d::homogenized_tensor`]).
    pub fn homogenized_tensor(&self) -> Result<Tensor2, ProblemError> {
        self.coef.homogenized_tensor()
    }

    /// ū on `grid` for the tensor `abar`; refuses a non-negligible off-diagonal entry.
    pub fn solve_homogenized(
        &self,
        abar: Tensor2,
        grid: FvGrid,
    ) -> Result<FvSolution, ProblemError> {
        let [[a11, a12], [a21, a22]] = abar;
        let off = 0.5 * (a12 + a21);
        if !(a11 > 0.0 && a22 > 0.0) || off.abs() > OFF_DIAGONAL_TOLERANCE * (a11 * a22).sqrt() {
            return Err(ProblemError::OffDiagonalTensor { a11, a12: off, a22 });
        }
        let cell_a = vec![[a11, a22]; grid.unknowns()];
        solve_dirichlet(grid, &cell_a, &|p| self.forcing_at(p), &|p| {
            self.boundary.eval(p)
        })
    }

    /// ū at the points, on [`Problem2d::reference_grid`] for the relative accuracy `target`.
    pub fn homogenized_solution(
        &self,
        points: &[[f64; 2]],
        target: f64,
    ) -> Result<Vec<f64>, ProblemError> {
        let abar = self.homogenized_tensor()?;
        self.solve_homogenized(abar, self.reference_grid(target)?)?
            .interpolate(points)
    }
}
