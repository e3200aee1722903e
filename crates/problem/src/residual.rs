//! The one residual shape every operator of the project reduces to.

use crate::error::ProblemError;

/// Every residual in mspinn has the form r_i = c2_i u''(x_i) + c1_i u'(x_i) + c0_i u(x_i) − g_i.
///
/// Darcy: c2 = −a(x/ε), c1 = −a'(x/ε)/ε, c0 = 0, g = f. Poisson: c2 = −1, c1 = c0 = 0, g = f.
/// Regression and boundary rows: c0 = 1, c1 = c2 = 0, g = target/boundary value.
///
/// Keeping the coefficients as plain numbers, evaluated once per collocation set, is what lets the
/// model crate (and a GPU kernel) form residuals from the network's jets (u, u', u'') without
/// ever evaluating a user expression.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinearResidual {
    pub x: Vec<f64>,
    pub c0: Vec<f64>,
    pub c1: Vec<f64>,
    pub c2: Vec<f64>,
    pub g: Vec<f64>,
}

impl LinearResidual {
    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Checks that the public fields, which anyone may fill, all have one entry per row.
    pub fn check(&self) -> Result<(), ProblemError> {
        let n = self.x.len();
        for (field, got) in [
            ("c0", self.c0.len()),
            ("c1", self.c1.len()),
            ("c2", self.c2.len()),
            ("g", self.g.len()),
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

    /// r_i from given jets, for tests and for the CPU reference path.
    pub fn residual(&self, u: &[f64], du: &[f64], d2u: &[f64]) -> Result<Vec<f64>, ProblemError> {
        self.check()?;
        for (field, got) in [("u", u.len()), ("du", du.len()), ("d2u", d2u.len())] {
            if got != self.len() {
                return Err(ProblemError::LengthMismatch {
                    field: field.to_owned(),
                    expected: self.len(),
                    got,
                });
            }
        }
        Ok((0..self.len())
            .map(|i| self.c2[i] * d2u[i] + self.c1[i] * du[i] + self.c0[i] * u[i] - self.g[i])
            .collect())
    }

    /// Rows of `other` appended after the rows of `self` (e.g. PDE rows then boundary rows).
    pub fn concat(&self, other: &LinearResidual) -> LinearResidual {
        let cat = |p: &[f64], q: &[f64]| p.iter().chain(q).copied().collect();
        LinearResidual {
            x: cat(&self.x, &other.x),
            c0: cat(&self.c0, &other.c0),
            c1: cat(&self.c1, &other.c1),
            c2: cat(&self.c2, &other.c2),
            g: cat(&self.g, &other.g),
        }
    }
}
