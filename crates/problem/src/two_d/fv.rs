//! Cell-centred finite volumes on a uniform rectangular grid, solved by sparse Cholesky.
//!
//! The unknowns are cell averages (to second order: centre values) of u. The flux through the
//! face between cells P and E is T (u_P − u_E) with T = a_f·|face|/h, where a_f is the
//! *harmonic* mean of the two cells' coefficients, 2 a_P a_E / (a_P + a_E): it is the
//! conductance of the two half-cells in series, so the flux is continuous across the face and
//! exact for a coefficient that is constant on each cell, and for a smooth a it equals
//! a(face) + O(h²), so the scheme stays second order (measured: see `tests/two_d_reference.rs`).
//! A Dirichlet face is the half-cell alone: T = a_P·|face|/(h/2), with g at the face midpoint.
//! The one-sided boundary flux is only first-order accurate locally, but its error enters the
//! solution through a boundary layer one cell wide, which keeps the max-norm error O(h²)
//! (supraconvergence; measured). The matrix is symmetric positive definite, so faer's sparse
//! Cholesky (with its fill-reducing ordering) solves it directly.

use faer::linalg::solvers::Solve;
use faer::sparse::{SparseColMat, Triplet};
use faer::{Mat, Side};

use crate::error::ProblemError;
use crate::two_d::problem2d::{finite, Rect};

/// The largest number of unknowns a solve accepts. The Cholesky factor of a 2-D five-point
/// matrix holds O(N log N) entries. Measured with faer 0.24's default ordering (whole solve,
/// peak resident memory, one shared 2-core machine): 512² unknowns 0.19 GB in 1.3 s, 1024²
/// 0.82 GB in 8 s; the ×4.2 per doubling extrapolates to ~3.5 GB at 2048² and ~15 GB at 4000²
/// (several minutes). 1.6·10⁷ (4000²) keeps a reference solve within a 24 GB machine with room
/// for the rest of a run; beyond it [`ProblemError::GridTooLarge`] says so before allocating.
pub const MAX_UNKNOWNS: usize = 16_000_000;

/// A uniform grid of `n[0]` × `n[1]` cells on a rectangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FvGrid {
    pub domain: Rect,
    pub n: [usize; 2],
}

impl FvGrid {
    /// Refuses empty grids and grids beyond [`MAX_UNKNOWNS`].
    pub fn new(domain: Rect, n: [usize; 2]) -> Result<FvGrid, ProblemError> {
        domain.check()?;
        if n[0] < 2 || n[1] < 2 {
            return Err(ProblemError::TooFewPoints {
                field: "grid cells per direction".to_owned(),
                n: n[0].min(n[1]),
                min: 2,
            });
        }
        let unknowns = n[0] as f64 * n[1] as f64;
        if unknowns > MAX_UNKNOWNS as f64 {
            return Err(ProblemError::GridTooLarge {
                field: "reference grid".to_owned(),
                unknowns,
                limit: MAX_UNKNOWNS,
                hint: "the sparse Cholesky factor would not fit in memory; \
                       ask for a looser accuracy, a larger eps or a smaller domain",
            });
        }
        Ok(FvGrid { domain, n })
    }

    /// Cell widths (h_x, h_y).
    pub fn h(&self) -> [f64; 2] {
        let s = self.domain.size();
        [s[0] / self.n[0] as f64, s[1] / self.n[1] as f64]
    }

    /// The centre of cell (i, j).
    pub fn centre(&self, i: usize, j: usize) -> [f64; 2] {
        self.domain.lerp(
            (i as f64 + 0.5) / self.n[0] as f64,
            (j as f64 + 0.5) / self.n[1] as f64,
        )
    }

    pub fn unknowns(&self) -> usize {
        self.n[0] * self.n[1]
    }

    /// Index of cell (i, j): x fastest.
    pub fn index(&self, i: usize, j: usize) -> usize {
        j * self.n[0] + i
    }
}

/// The harmonic mean of two positive conductivities: two half-cells in series.
pub(crate) fn harmonic(a: f64, b: f64) -> f64 {
    2.0 * a * b / (a + b)
}

/// Solves −∇·(A∇u) = f with u = g on the boundary, where A is diagonal with per-cell values
/// `cell_a[index] = [A₁₁, A₂₂]` (a scalar coefficient gives two equal entries; the homogenised
/// tensor a constant one). f is taken at cell centres (midpoint rule), g at face midpoints.
pub fn solve_dirichlet(
    grid: FvGrid,
    cell_a: &[[f64; 2]],
    forcing: &dyn Fn([f64; 2]) -> f64,
    boundary: &dyn Fn([f64; 2]) -> f64,
) -> Result<FvSolution, ProblemError> {
    let [nx, ny] = grid.n;
    let [hx, hy] = grid.h();
    let n = grid.unknowns();
    if cell_a.len() != n {
        return Err(ProblemError::LengthMismatch {
            field: "cell coefficients".to_owned(),
            expected: n,
            got: cell_a.len(),
        });
    }
    let r = grid.domain;
    let mut diag = vec![0.0; n];
    let mut rhs = vec![0.0; n];
    let mut off: Vec<Triplet<usize, usize, f64>> = Vec::with_capacity(2 * n);
    for j in 0..ny {
        for i in 0..nx {
            let p = grid.index(i, j);
            let c = grid.centre(i, j);
            let [ax, ay] = cell_a[p];
            if !(ax > 0.0 && ay > 0.0 && ax.is_finite() && ay.is_finite()) {
                return Err(ProblemError::NonPositiveCoefficient2d {
                    field: "coefficient (at a cell centre of the reference grid)".to_owned(),
                    expr: "a(x/eps)".to_owned(),
                    y: c,
                    min: ax.min(ay),
                });
            }
            rhs[p] += finite("forcing", c, forcing(c))? * hx * hy;
            // East and north neighbours (each interior face once); boundary faces as half-cells.
            if i + 1 < nx {
                let t = harmonic(ax, cell_a[p + 1][0]) * hy / hx;
                diag[p] += t;
                diag[p + 1] += t;
                off.push(Triplet::new(p + 1, p, -t));
            }
            if j + 1 < ny {
                let t = harmonic(ay, cell_a[p + nx][1]) * hx / hy;
                diag[p] += t;
                diag[p + nx] += t;
                off.push(Triplet::new(p + nx, p, -t));
            }
            let mut wall = |t: f64, at: [f64; 2]| -> Result<(), ProblemError> {
                diag[p] += t;
                rhs[p] += t * finite("boundary", at, boundary(at))?;
                Ok(())
            };
            if i == 0 {
                wall(2.0 * ax * hy / hx, [r.x[0], c[1]])?;
            }
            if i + 1 == nx {
                wall(2.0 * ax * hy / hx, [r.x[1], c[1]])?;
            }
            if j == 0 {
                wall(2.0 * ay * hx / hy, [c[0], r.y[0]])?;
            }
            if j + 1 == ny {
                wall(2.0 * ay * hx / hy, [c[0], r.y[1]])?;
            }
        }
    }
    off.extend(diag.iter().enumerate().map(|(p, &d)| Triplet::new(p, p, d)));
    let mut sol = cholesky_solve(n, &off, vec![rhs], "reference solver")?;
    let values = sol.pop().unwrap_or_default();
    Ok(FvSolution::new(grid, values, boundary))
}

/// Solves A x = b for each right-hand side, with A symmetric positive definite given by its
/// lower triangle (row ≥ column; duplicates are summed), by one sparse Cholesky factorisation.
pub(crate) fn cholesky_solve(
    n: usize,
    lower: &[Triplet<usize, usize, f64>],
    rhs: Vec<Vec<f64>>,
    field: &str,
) -> Result<Vec<Vec<f64>>, ProblemError> {
    let fail = |reason: String| ProblemError::Solver {
        field: field.to_owned(),
        reason,
    };
    let a = SparseColMat::<usize, f64>::try_new_from_triplets(n, n, lower)
        .map_err(|e| fail(format!("cannot build the matrix: {e:?}")))?;
    let llt = a
        .as_ref()
        .sp_cholesky(Side::Lower)
        .map_err(|e| fail(format!("Cholesky factorisation failed: {e:?}")))?;
    let m = rhs.len();
    let mut b = Mat::<f64>::from_fn(n, m, |i, k| rhs[k][i]);
    llt.solve_in_place(b.as_mut());
    let out: Vec<Vec<f64>> = (0..m)
        .map(|k| (0..n).map(|i| b[(i, k)]).collect())
        .collect();
    if let Some(bad) = out.iter().flatten().find(|v| !v.is_finite()) {
        return Err(fail(format!("the solution is not finite ({bad})")));
    }
    Ok(out)
}

/// A finite-volume solution: cell-centre values, plus g on the boundary, interpolated
/// bilinearly anywhere in the closed rectangle.
#[derive(Clone, Debug)]
pub struct FvSolution {
    grid: FvGrid,
    values: Vec<f64>,
    /// Node coordinates of the extended grid: x₀, the cell centres, x₁ (likewise in y).
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Values on the extended grid ((n₀ + 2) × (n₁ + 2), x fastest): the solution inside,
    /// g at the face midpoints and corners of the boundary.
    ext: Vec<f64>,
}

impl FvSolution {
    pub(crate) fn new(
        grid: FvGrid,
        values: Vec<f64>,
        boundary: &dyn Fn([f64; 2]) -> f64,
    ) -> FvSolution {
        let [nx, ny] = grid.n;
        let r = grid.domain;
        let axis = |lo: f64, hi: f64, m: usize| -> Vec<f64> {
            let mut v = Vec::with_capacity(m + 2);
            v.push(lo);
            v.extend((0..m).map(|i| {
                let t = (i as f64 + 0.5) / m as f64;
                lo * (1.0 - t) + hi * t
            }));
            v.push(hi);
            v
        };
        let xs = axis(r.x[0], r.x[1], nx);
        let ys = axis(r.y[0], r.y[1], ny);
        let w = nx + 2;
        let mut ext = vec![0.0; w * (ny + 2)];
        for (jj, &y) in ys.iter().enumerate() {
            for (ii, &x) in xs.iter().enumerate() {
                let inside = (1..=nx).contains(&ii) && (1..=ny).contains(&jj);
                ext[jj * w + ii] = if inside {
                    values[grid.index(ii - 1, jj - 1)]
                } else {
                    boundary([x, y])
                };
            }
        }
        FvSolution {
            grid,
            values,
            xs,
            ys,
            ext,
        }
    }

    pub fn grid(&self) -> FvGrid {
        self.grid
    }

    /// The cell-centre values, x fastest ([`FvGrid::index`]).
    pub fn cell_values(&self) -> &[f64] {
        &self.values
    }

    /// Bilinear interpolation at each point (second order, like the scheme); points outside
    /// the closed rectangle are refused.
    pub fn interpolate(&self, points: &[[f64; 2]]) -> Result<Vec<f64>, ProblemError> {
        let w = self.xs.len();
        points
            .iter()
            .map(|&p| {
                if !self.grid.domain.contains(p) {
                    return Err(self.grid.domain.out_of("points", p));
                }
                let (i, s) = locate(&self.xs, p[0]);
                let (j, t) = locate(&self.ys, p[1]);
                let v = |ii: usize, jj: usize| self.ext[jj * w + ii];
                Ok((1.0 - t) * ((1.0 - s) * v(i, j) + s * v(i + 1, j))
                    + t * ((1.0 - s) * v(i, j + 1) + s * v(i + 1, j + 1)))
            })
            .collect()
    }
}

/// The interval [nodes[i], nodes[i + 1]] holding v and the fraction of the way across it.
fn locate(nodes: &[f64], v: f64) -> (usize, f64) {
    let last = nodes.len() - 2;
    let i = nodes
        .partition_point(|&x| x <= v)
        .saturating_sub(1)
        .min(last);
    let (a, b) = (nodes[i], nodes[i + 1]);
    (i, ((v - a) / (b - a)).clamp(0.0, 1.0))
}
