//! The homogenised tensor ā of a 2-D periodic coefficient, from the cell problems.
//!
//! For j = 1, 2 the corrector χⱼ is periodic on the cell Y = [0, p₁] × [0, p₂] and solves
//! −∇·(a(y)(eⱼ + ∇χⱼ)) = 0; then ā_ij = ⟨a(δ_ij + ∂ᵢχⱼ)⟩ (mean over Y). Both cell problems use
//! the same finite volumes as the reference solver (harmonic face means, see [`crate::two_d`]'s
//! `fv.rs`) with periodic neighbours, so the discrete ā is consistent with the discrete
//! Darcy operator. The periodic matrix is singular (constants), so χⱼ is pinned to 0 in cell 0:
//! ā only depends on differences of χⱼ, and the reduced matrix is symmetric positive definite.
//!
//! The discrete ā is computed from face fluxes, ā_ij = (1/N) Σ over faces normal to eᵢ of
//! a_f(δ_ij + Dᵢχⱼ). By the discrete cell equation this equals the energy form
//! (1/N) Σ_f a_f (eᵢ + Dχᵢ)_f (eⱼ + Dχⱼ)_f, which is symmetric in i, j and, for a laminate
//! a(y₁), reduces to the harmonic and arithmetic means of a over cell centres (midpoint rule,
//! spectrally accurate for a smooth periodic a).

use faer::sparse::Triplet;

use crate::error::ProblemError;
use crate::two_d::coefficient2d::Coefficient2d;
use crate::two_d::fv::{cholesky_solve, harmonic, MAX_UNKNOWNS};

/// Cells per period and direction of [`Coefficient2d::homogenized_tensor`]'s default solve.
/// Measured on `oscillatory-2d` (tests/two_d_homogenized.rs): ā₁₁ = 1.932771, 1.934705,
/// 1.935195, 1.935318, 1.935349 for n = 16 … 256, observed order 1.98, 1.995, 1.999, so the
/// error is ≈ 0.67·n⁻² (~1e-5, 5e-6 relative, at n = 256, in 0.5 s), far below the
/// homogenisation error O(ε) that ū is used to show.
pub const CELL_PROBLEM_CELLS: usize = 256;

/// The 2 × 2 homogenised tensor (symmetric positive definite).
pub type Tensor2 = [[f64; 2]; 2];

impl Coefficient2d {
    /// ā on a [`CELL_PROBLEM_CELLS`]² grid of the period cell.
    pub fn homogenized_tensor(&self) -> Result<Tensor2, ProblemError> {
        self.homogenized_tensor_on([CELL_PROBLEM_CELLS, CELL_PROBLEM_CELLS])
    }

    /// ā on an `n[0]` × `n[1]` grid of the period cell (second order in the cell width).
    pub fn homogenized_tensor_on(&self, n: [usize; 2]) -> Result<Tensor2, ProblemError> {
        let [n1, n2] = n;
        if n1 < 4 || n2 < 4 {
            return Err(ProblemError::TooFewPoints {
                field: "cell problem cells per direction".to_owned(),
                n: n1.min(n2),
                min: 4,
            });
        }
        let total = n1 as f64 * n2 as f64;
        if total > MAX_UNKNOWNS as f64 {
            return Err(ProblemError::GridTooLarge {
                field: "cell problem grid".to_owned(),
                unknowns: total,
                limit: MAX_UNKNOWNS,
                hint: "the cell problem needs far fewer cells: its error falls as n^-2",
            });
        }
        let [p1, p2] = self.period();
        let h = [p1 / n1 as f64, p2 / n2 as f64];
        let idx = |i: usize, j: usize| j * n1 + i;
        let mut a = vec![0.0; n1 * n2];
        for j in 0..n2 {
            for i in 0..n1 {
                let y = [(i as f64 + 0.5) * h[0], (j as f64 + 0.5) * h[1]];
                let v = self.a(y);
                if !(v.is_finite() && v > 0.0) {
                    return Err(ProblemError::NonPositiveCoefficient2d {
                        field: "coefficient".to_owned(),
                        expr: self.source().to_owned(),
                        y,
                        min: v,
                    });
                }
                a[idx(i, j)] = v;
            }
        }
        // Faces: (lower/left cell, upper/right cell, direction, a_f), periodic.
        let mut faces: Vec<(usize, usize, usize, f64)> = Vec::with_capacity(2 * n1 * n2);
        for j in 0..n2 {
            for i in 0..n1 {
                let p = idx(i, j);
                let e = idx((i + 1) % n1, j);
                let nn = idx(i, (j + 1) % n2);
                faces.push((p, e, 0, harmonic(a[p], a[e])));
                faces.push((p, nn, 1, harmonic(a[p], a[nn])));
            }
        }
        // Unknown k − 1 is cell k; cell 0 is pinned to χ = 0.
        let m = n1 * n2 - 1;
        let mut diag = vec![0.0; m];
        let mut lower: Vec<Triplet<usize, usize, f64>> = Vec::with_capacity(3 * m);
        let mut rhs = vec![vec![0.0; m]; 2];
        // Transmissibility |face| / distance per direction.
        let geom = [h[1] / h[0], h[0] / h[1]];
        let face_len = [h[1], h[0]];
        for &(p, q, dir, af) in &faces {
            let t = af * geom[dir];
            for c in [p, q] {
                if c > 0 {
                    diag[c - 1] += t;
                }
            }
            if p > 0 && q > 0 {
                let (r, c) = if p > q { (p, q) } else { (q, p) };
                lower.push(Triplet::new(r - 1, c - 1, -t));
            }
            // The source ∇·(a eⱼ): +a_f|f| into the cell behind the face, −a_f|f| ahead.
            if p > 0 {
                rhs[dir][p - 1] += af * face_len[dir];
            }
            if q > 0 {
                rhs[dir][q - 1] -= af * face_len[dir];
            }
        }
        lower.extend(diag.iter().enumerate().map(|(k, &d)| Triplet::new(k, k, d)));
        let chi = cholesky_solve(m, &lower, rhs, "cell problem")?;
        let value = |j: usize, c: usize| if c == 0 { 0.0 } else { chi[j][c - 1] };
        let mut abar = [[0.0; 2]; 2];
        for &(p, q, dir, af) in &faces {
            for (j, row) in abar[dir].iter_mut().enumerate() {
                let delta = if dir == j { 1.0 } else { 0.0 };
                *row += af * (delta + (value(j, q) - value(j, p)) / h[dir]);
            }
        }
        for row in &mut abar {
            for v in row.iter_mut() {
                *v /= (n1 * n2) as f64;
            }
        }
        Ok(abar)
    }
}
