//! The symmetric products of a Jacobian, J Jᵀ (N × N) and Jᵀ J (N_p × N_p), lower triangle only:
//! BLAS's syrk, here through faer's triangular matmul (half the flops of a full product, rayon
//! threads). One function for the dense kernel ([`crate::DenseNtk`]), the Gram accumulator
//! ([`crate::GramAccumulator`]) and the Levenberg–Marquardt normal equations in mspinn-train.

use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::traits::ComplexField;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Which product of the row-major N × N_p matrix J.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// J Jᵀ, N × N: the sample-space kernel.
    Rows,
    /// Jᵀ J, N_p × N_p: the parameter-space Gram matrix.
    Columns,
}

/// The lower triangle of J Jᵀ or Jᵀ J into `out` (replacing or adding to it, per `accum`); the
/// strict upper triangle of `out` is never written.
pub fn syrk_lower<T: ComplexField>(out: MatMut<'_, T>, accum: Accum, j: MatRef<'_, T>, side: Side) {
    let (lhs, rhs) = match side {
        Side::Rows => (j, j.transpose()),
        Side::Columns => (j.transpose(), j),
    };
    matmul(
        out,
        BlockStructure::TriangularLower,
        accum,
        lhs,
        BlockStructure::Rectangular,
        rhs,
        BlockStructure::Rectangular,
        T::one_impl(),
        Par::rayon(0),
    );
}

/// Copies the lower triangle of a square matrix onto its upper triangle.
pub fn mirror_lower(m: &mut Mat<f64>) {
    let n = m.nrows();
    for j in 0..n {
        for i in 0..j {
            m[(i, j)] = m[(j, i)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both sides against the plain triple loop, on a non-square J, accumulated twice.
    #[test]
    fn lower_triangles_equal_the_plain_products() {
        let (n, p) = (9, 5);
        let v: Vec<f64> = (0..n * p).map(|k| (k as f64 * 0.71).cos()).collect();
        let j = MatRef::from_row_major_slice(&v, n, p);
        for (side, order) in [(Side::Rows, n), (Side::Columns, p)] {
            let mut out = Mat::<f64>::zeros(order, order);
            syrk_lower(out.as_mut(), Accum::Replace, j, side);
            syrk_lower(out.as_mut(), Accum::Add, j, side);
            for a in 0..order {
                for b in 0..order {
                    let want: f64 = match side {
                        Side::Rows => (0..p).map(|k| v[a * p + k] * v[b * p + k]).sum(),
                        Side::Columns => (0..n).map(|k| v[k * p + a] * v[k * p + b]).sum(),
                    };
                    if b <= a {
                        assert!((out[(a, b)] - 2.0 * want).abs() < 1e-13, "{side:?} {a},{b}");
                    } else {
                        assert_eq!(out[(a, b)], 0.0, "{side:?}: upper triangle written");
                    }
                }
            }
        }
    }
}
