//! −∇·(A∇u) = f for a constant symmetric positive definite tensor A with A₁₂ ≠ 0, on the same
//! cell-centred grid as the reference solver (the homogenised problem of a coefficient without
//! reflection symmetry).
//!
//! The diagonal part is the reference solver's five-point flux balance (half-cell Dirichlet
//! faces). The cross term −2A₁₂ ∂ₓᵧu is the four-corner difference
//! [u(x₊, y₊) − u(x₋, y₊) − u(x₊, y₋) + u(x₋, y₋)] / ((x₊ − x₋)(y₊ − y₋)), with x± the
//! neighbouring centres, or the boundary (h/2 away) where the neighbour would lie outside, and
//! there g at that boundary point. That difference is exact for bilinear u, second order inside
//! and first order in the boundary cells, which (as for the half-cell faces) keeps the solution
//! second order (measured for A = [[2, 0.8], [0.8, 1]], u = sin πx sin πy + x²y: max errors
//! 5.84e-4, 1.46e-4, 3.65e-5, 9.14e-6 at h = 1/32 … 1/256, order 2.00; see
//! tests/two_d_homogenized.rs). The boundary rows are not symmetric,
//! so this system is solved by sparse LU instead of Cholesky.

use faer::linalg::solvers::Solve;
use faer::sparse::{SparseColMat, Triplet};
use faer::Mat;

use crate::error::ProblemError;
use crate::two_d::cell::Tensor2;
use crate::two_d::fv::{FvGrid, FvSolution};
use crate::two_d::problem2d::finite;

/// Solves −∇·(A∇u) = f, u = g on the boundary, for a constant tensor A (symmetrised).
pub fn solve_dirichlet_tensor(
    grid: FvGrid,
    a: Tensor2,
    forcing: &dyn Fn([f64; 2]) -> f64,
    boundary: &dyn Fn([f64; 2]) -> f64,
) -> Result<FvSolution, ProblemError> {
    let (a11, a22) = (a[0][0], a[1][1]);
    let a12 = 0.5 * (a[0][1] + a[1][0]);
    if !(a11 > 0.0 && a22 > 0.0 && a11 * a22 - a12 * a12 > 0.0) {
        return Err(ProblemError::InvalidTensor {
            a11,
            a12,
            a22,
            reason: "it is not positive definite",
        });
    }
    let [nx, ny] = grid.n;
    let [hx, hy] = grid.h();
    let r = grid.domain;
    let n = grid.unknowns();
    let mut entries: Vec<Triplet<usize, usize, f64>> = Vec::with_capacity(9 * n);
    let mut rhs = vec![0.0; n];
    let (tx, ty) = (a11 * hy / hx, a22 * hx / hy);
    // Neighbour positions along one axis: (index if inside, coordinate).
    let side = |k: usize, m: usize, lo: f64, hi: f64, h: f64, c: f64| {
        let minus = if k == 0 {
            (None, lo)
        } else {
            (Some(k - 1), c - h)
        };
        let plus = if k + 1 == m {
            (None, hi)
        } else {
            (Some(k + 1), c + h)
        };
        [minus, plus]
    };
    for j in 0..ny {
        for i in 0..nx {
            let p = grid.index(i, j);
            let c = grid.centre(i, j);
            rhs[p] += finite("forcing", c, forcing(c))? * hx * hy;
            let xs = side(i, nx, r.x[0], r.x[1], hx, c[0]);
            let ys = side(j, ny, r.y[0], r.y[1], hy, c[1]);
            // Five-point part: interior faces T, boundary faces 2T with g at the face.
            let mut diag = 0.0;
            for (idx, at, t) in [
                (xs[0].0.map(|ii| grid.index(ii, j)), [xs[0].1, c[1]], tx),
                (xs[1].0.map(|ii| grid.index(ii, j)), [xs[1].1, c[1]], tx),
                (ys[0].0.map(|jj| grid.index(i, jj)), [c[0], ys[0].1], ty),
                (ys[1].0.map(|jj| grid.index(i, jj)), [c[0], ys[1].1], ty),
            ] {
                match idx {
                    Some(q) => {
                        diag += t;
                        entries.push(Triplet::new(p, q, -t));
                    }
                    None => {
                        diag += 2.0 * t;
                        rhs[p] += 2.0 * t * finite("boundary", at, boundary(at))?;
                    }
                }
            }
            entries.push(Triplet::new(p, p, diag));
            // Cross term −2 A₁₂ ∂ₓᵧu, times the cell area.
            let denom = (xs[1].1 - xs[0].1) * (ys[1].1 - ys[0].1);
            let w = -2.0 * a12 * hx * hy / denom;
            for (sx, sy, sign) in [(1, 1, 1.0), (0, 1, -1.0), (1, 0, -1.0), (0, 0, 1.0)] {
                let (ix, x) = xs[sx];
                let (iy, y) = ys[sy];
                match (ix, iy) {
                    (Some(ii), Some(jj)) => {
                        entries.push(Triplet::new(p, grid.index(ii, jj), w * sign))
                    }
                    _ => rhs[p] -= w * sign * finite("boundary", [x, y], boundary([x, y]))?,
                }
            }
        }
    }
    let fail = |reason: String| ProblemError::Solver {
        field: "homogenized solver".to_owned(),
        reason,
    };
    let m = SparseColMat::<usize, f64>::try_new_from_triplets(n, n, &entries)
        .map_err(|e| fail(format!("cannot build the matrix: {e:?}")))?;
    let lu = m
        .as_ref()
        .sp_lu()
        .map_err(|e| fail(format!("LU factorisation failed: {e:?}")))?;
    let mut b = Mat::<f64>::from_fn(n, 1, |i, _| rhs[i]);
    lu.solve_in_place(b.as_mut());
    let values: Vec<f64> = (0..n).map(|i| b[(i, 0)]).collect();
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(fail(format!("the solution is not finite ({bad})")));
    }
    Ok(FvSolution::new(grid, values, boundary))
}
