//! Eigenvalues of symmetric positive semi-definite kernels, with faer.

use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

use crate::{NtkError, Result};

/// Eigenvalues in descending order, with the threshold below which they count as zero.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spectrum {
    pub eigenvalues: Vec<f64>,
    pub zero_threshold: f64,
}

/// An eigenvalue of a PSD matrix of order n computed in floating point is only known to about
/// n · u · λ_max (u the unit round-off of the arithmetic that formed the matrix); below that it is
/// numerically zero. The Gram and dense paths use the same rule so their "nonzero part" agrees.
pub fn nonzero_threshold(lambda_max: f64, order: usize, unit_roundoff: f64) -> f64 {
    lambda_max.abs() * order as f64 * unit_roundoff
}

impl Spectrum {
    /// All eigenvalues of the symmetric matrix `m` (lower triangle read).
    pub fn of_symmetric(m: &Mat<f64>, unit_roundoff: f64) -> Result<Self> {
        let n = m.nrows();
        if n == 0 {
            return Ok(Self {
                eigenvalues: Vec::new(),
                zero_threshold: 0.0,
            });
        }
        let mut ev = m
            .self_adjoint_eigenvalues(Side::Lower)
            .map_err(|_| NtkError::Eigen { n })?;
        ev.reverse();
        let zero_threshold = nonzero_threshold(ev[0], n, unit_roundoff);
        Ok(Self {
            eigenvalues: ev,
            zero_threshold,
        })
    }

    /// Re-derives the zero threshold for a kernel of order `order` (the dense and Gram paths both
    /// use max(N, N_p), so they agree on what "nonzero" means).
    pub fn rethreshold(mut self, order: usize, unit_roundoff: f64) -> Self {
        self.zero_threshold = nonzero_threshold(self.max(), order, unit_roundoff);
        self
    }

    /// The same spectrum multiplied by `s` > 0.
    pub fn scaled(mut self, s: f64) -> Self {
        for e in &mut self.eigenvalues {
            *e *= s;
        }
        self.zero_threshold *= s;
        self
    }

    pub fn top(&self, k: usize) -> Vec<f64> {
        self.eigenvalues.iter().take(k).copied().collect()
    }
    pub fn max(&self) -> f64 {
        self.eigenvalues.first().copied().unwrap_or(0.0)
    }
    pub fn trace(&self) -> f64 {
        self.eigenvalues.iter().sum()
    }
    /// The eigenvalues above the zero threshold.
    pub fn nonzero(&self) -> Vec<f64> {
        self.eigenvalues
            .iter()
            .copied()
            .filter(|&e| e > self.zero_threshold)
            .collect()
    }
    pub fn rank(&self) -> usize {
        self.nonzero().len()
    }
    /// λ_max / λ_min over the nonzero part.
    pub fn cond_nonzero(&self) -> f64 {
        let nz = self.nonzero();
        match (nz.first(), nz.last()) {
            (Some(&hi), Some(&lo)) => hi / lo,
            _ => f64::NAN,
        }
    }
}

/// A host f64 matrix from an (r × c) tensor.
pub fn to_faer(t: &candle_core::Tensor) -> Result<Mat<f64>> {
    let (r, c) = t.dims2()?;
    let v: Vec<f64> = t
        .to_dtype(candle_core::DType::F64)?
        .flatten_all()?
        .to_vec1()?;
    Ok(Mat::from_fn(r, c, |i, j| v[i * c + j]))
}

/// ‖m‖_F.
pub fn frobenius(m: &Mat<f64>) -> f64 {
    m.norm_l2()
}
