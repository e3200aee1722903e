//! The homogenised solution ū, the low-frequency limit the paper asks whether a PINN finds.
//!
//! In 1-D the homogenised coefficient is the harmonic mean ā of a over a period, so ū solves
//! −(ā ū')' = f with the same Dirichlet data; it is computed with the same quadrature solver
//! (with a constant coefficient), because f itself may still oscillate on the ε scale.

use crate::error::ProblemError;
use crate::problem::{OperatorKind, Problem};
use crate::reference::solve_darcy;

impl Problem {
    /// ā for a Darcy problem, from the coefficient's harmonic mean; None for other kinds.
    pub fn homogenized_coefficient(&self) -> Result<Option<f64>, ProblemError> {
        match (self.kind, &self.coef) {
            (OperatorKind::Darcy, Some(coef)) => Ok(Some(coef.try_harmonic_mean()?)),
            (OperatorKind::Darcy, None) => Err(ProblemError::MissingField {
                field: "coefficient".to_owned(),
                kind: self.kind.to_string(),
            }),
            _ => Ok(None),
        }
    }

    /// ū at `x`: for Darcy problems the solution of −(ā ū')' = f with the same boundary data;
    /// for others that of their `homogenization` problem; None when neither applies.
    pub fn homogenized_solution(&self, x: &[f64]) -> Result<Option<Vec<f64>>, ProblemError> {
        match self.homogenized_coefficient()? {
            Some(abar) => {
                let forcing = |t: f64| self.forcing.eval(t);
                let sol = solve_darcy(
                    self.domain,
                    &|_| abar,
                    &forcing,
                    self.boundary,
                    self.length_scale(),
                    x,
                )?;
                Ok(Some(sol.into_iter().map(|(u, _)| u).collect()))
            }
            None => match &self.homogenization {
                Some(h) => h.homogenized_solution(x),
                None => Ok(None),
            },
        }
    }
}
