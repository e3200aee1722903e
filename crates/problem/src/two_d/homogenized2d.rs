//! The homogenised 2-D solution ū: −∇·(ā∇ū) = f with the data of the oscillatory problem.
//!
//! ā is the constant tensor of the cell problems ([`crate::Coefficient2d::homogenized_tensor`]).
//! ū is solved on the same kind of grid as the reference (f may still oscillate on the ε
//! scale, as in 1-D), so it is second order like the reference:
//! * when |ā₁₂| ≤ [`OFF_DIAGONAL_TOLERANCE`]·√(ā₁₁ā₂₂) — every coefficient with a reflection
//!   symmetry (a(c − y₁, y₂) = a(y₁, y₂) for some c, e.g. `oscillatory-2d` and all axis-aligned
//!   laminates) has ā₁₂ = 0 exactly, and the discrete ā₁₂ vanishes to rounding — with the
//!   reference solver's five-point stencil and sparse Cholesky;
//! * otherwise with the nine-point stencil of [`solve_dirichlet_tensor`] (the five-point part
//!   plus a four-corner cross difference) and sparse LU, since its boundary rows are not
//!   symmetric.

use crate::error::ProblemError;
use crate::two_d::anisotropic::solve_dirichlet_tensor;
use crate::two_d::cell::Tensor2;
use crate::two_d::fv::{solve_dirichlet, FvGrid, FvSolution};
use crate::two_d::problem2d::Problem2d;

/// Largest |ā₁₂|/√(ā₁₁ā₂₂) treated as zero (the cell solve's rounding is ~1e-13), below
/// which the symmetric five-point solve is used.
pub const OFF_DIAGONAL_TOLERANCE: f64 = 1e-8;

impl Problem2d {
    /// ā of this problem's coefficient (see [`crate::Coefficient2d::homogenized_tensor`]).
    pub fn homogenized_tensor(&self) -> Result<Tensor2, ProblemError> {
        self.coef.homogenized_tensor()
    }

    /// ū on `grid` for the constant tensor `abar` (symmetrised; refused unless positive
    /// definite).
    pub fn solve_homogenized(
        &self,
        abar: Tensor2,
        grid: FvGrid,
    ) -> Result<FvSolution, ProblemError> {
        let [[a11, a12], [a21, a22]] = abar;
        let off = 0.5 * (a12 + a21);
        if !(a11.is_finite() && a22.is_finite() && off.is_finite()) {
            return Err(ProblemError::InvalidTensor {
                a11,
                a12: off,
                a22,
                reason: "it is not finite",
            });
        }
        let forcing = |p: [f64; 2]| self.forcing_at(p);
        let boundary = |p: [f64; 2]| self.boundary.eval(p);
        if a11 > 0.0 && a22 > 0.0 && off.abs() <= OFF_DIAGONAL_TOLERANCE * (a11 * a22).sqrt() {
            let cell_a = vec![[a11, a22]; grid.unknowns()];
            solve_dirichlet(grid, &cell_a, &forcing, &boundary)
        } else {
            solve_dirichlet_tensor(grid, abar, &forcing, &boundary)
        }
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
