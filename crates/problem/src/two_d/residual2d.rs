//! The residual shape every 2-D row reduces to.

use crate::error::ProblemError;

/// r_i = c_u u + Σₖ `c_grad[k]` ∂ₖu + Σₖ `c_hess[k]` ∂ₖₖu − rhs at the point `points[i]`.
///
/// Darcy: c_hess = (−a, −a), c_grad = −∇_y a(x/ε)/ε, c_u = 0, rhs = f. Boundary rows: c_u = 1,
/// the others 0, rhs = g.
///
/// As in 1-D ([`crate::LinearResidual`]) the coefficients are plain numbers, evaluated once per
/// point set, so an engine forms residuals from the network's jets (u, ∇u, diag ∇²u) without
/// evaluating a user expression. The per-direction arrays (`[Vec<f64>; 2]`) are the shape a
/// d-dimensional jet produces: one first and one pure second derivative per coordinate; the
/// operator −∇·(a∇u) with scalar a never needs the mixed derivatives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinearResidual2d {
    pub points: Vec<[f64; 2]>,
    pub c_u: Vec<f64>,
    /// Coefficients of ∂u/∂x and ∂u/∂y.
    pub c_grad: [Vec<f64>; 2],
    /// Coefficients of ∂²u/∂x² and ∂²u/∂y².
    pub c_hess: [Vec<f64>; 2],
    /// f for PDE rows, g for boundary rows.
    pub rhs: Vec<f64>,
}

impl LinearResidual2d {
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Rows with all coefficients zero and rhs zero, to be filled in place.
    pub(crate) fn zeros(points: &[[f64; 2]]) -> LinearResidual2d {
        let n = points.len();
        LinearResidual2d {
            points: points.to_vec(),
            c_u: vec![0.0; n],
            c_grad: [vec![0.0; n], vec![0.0; n]],
            c_hess: [vec![0.0; n], vec![0.0; n]],
            rhs: vec![0.0; n],
        }
    }

    /// Checks that the public fields, which anyone may fill, all have one entry per row.
    pub fn check(&self) -> Result<(), ProblemError> {
        let n = self.len();
        for (field, got) in [
            ("c_u", self.c_u.len()),
            ("c_grad[0]", self.c_grad[0].len()),
            ("c_grad[1]", self.c_grad[1].len()),
            ("c_hess[0]", self.c_hess[0].len()),
            ("c_hess[1]", self.c_hess[1].len()),
            ("rhs", self.rhs.len()),
        ] {
            if got != n {
                return Err(ProblemError::LengthMismatch {
                    field: field.to_owned(),
                    expected: n,
                    got,
                });
            }
        }
        Ok(())
    }

    /// r_i from given jets: u, its gradient (∂ₓu, ∂ᵧu) and the diagonal of its Hessian
    /// (∂ₓₓu, ∂ᵧᵧu); for tests and for a CPU reference path.
    pub fn residual(
        &self,
        u: &[f64],
        grad: [&[f64]; 2],
        hess_diag: [&[f64]; 2],
    ) -> Result<Vec<f64>, ProblemError> {
        self.check()?;
        for (field, got) in [
            ("u", u.len()),
            ("grad[0]", grad[0].len()),
            ("grad[1]", grad[1].len()),
            ("hess_diag[0]", hess_diag[0].len()),
            ("hess_diag[1]", hess_diag[1].len()),
        ] {
            if got != self.len() {
                return Err(ProblemError::LengthMismatch {
                    field: field.to_owned(),
                    expected: self.len(),
                    got,
                });
            }
        }
        Ok((0..self.len())
            .map(|i| {
                self.c_u[i] * u[i]
                    + self.c_grad[0][i] * grad[0][i]
                    + self.c_grad[1][i] * grad[1][i]
                    + self.c_hess[0][i] * hess_diag[0][i]
                    + self.c_hess[1][i] * hess_diag[1][i]
                    - self.rhs[i]
            })
            .collect())
    }

    /// Rows of `other` appended after the rows of `self` (PDE rows, then boundary rows).
    pub fn concat(&self, other: &LinearResidual2d) -> LinearResidual2d {
        fn cat<T: Copy>(p: &[T], q: &[T]) -> Vec<T> {
            p.iter().chain(q).copied().collect()
        }
        LinearResidual2d {
            points: cat(&self.points, &other.points),
            c_u: cat(&self.c_u, &other.c_u),
            c_grad: [
                cat(&self.c_grad[0], &other.c_grad[0]),
                cat(&self.c_grad[1], &other.c_grad[1]),
            ],
            c_hess: [
                cat(&self.c_hess[0], &other.c_hess[0]),
                cat(&self.c_hess[1], &other.c_hess[1]),
            ],
            rhs: cat(&self.rhs, &other.rhs),
        }
    }
}
