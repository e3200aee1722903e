//! The full N × N kernel K = J J^T D, for N small enough to hold it.

use candle_core::{DType, Tensor, WithDType};
use faer::{Accum, Mat, MatRef};

use crate::products::{syrk_lower, Side};
use crate::spectrum::{frobenius, to_faer, Spectrum};
use crate::Result;

/// J J^T on the host in f64 with the column weights D = diag(w); K_ij = (J J^T)_ij w_j.
pub struct DenseNtk {
    /// J J^T, (N × N).
    pub jjt: Mat<f64>,
    /// Column weights (1/N_c and λ/N_b under the appendix scaling).
    pub w: Vec<f64>,
    pub n_pde: usize,
}

impl DenseNtk {
    /// From the Jacobian of all rows (PDE rows first). The product runs in J's dtype on J's
    /// device: on the CPU a faer product of the lower triangle only (half the flops of candle's
    /// full matmul, mirrored afterwards), elsewhere a candle matmul (cuBLAS on a GPU).
    pub fn from_jacobian(j: &Tensor, w: &[f64], n_pde: usize) -> Result<Self> {
        let jjt = match (j.device().is_cpu(), j.dtype()) {
            (true, DType::F64) => lower_jjt::<f64>(j)?,
            (true, DType::F32) => lower_jjt::<f32>(j)?,
            _ => to_faer(&j.matmul(&j.t()?)?)?,
        };
        Ok(Self {
            jjt,
            w: w.to_vec(),
            n_pde,
        })
    }

    pub fn n(&self) -> usize {
        self.jjt.nrows()
    }
    pub fn n_bc(&self) -> usize {
        self.n() - self.n_pde
    }

    /// The full, non-symmetric K = J J^T D.
    pub fn k(&self) -> Mat<f64> {
        Mat::from_fn(self.n(), self.n(), |i, j| self.jjt[(i, j)] * self.w[j])
    }

    /// K_uu = w_u J_u J_u^T (symmetric: every PDE column has the same weight).
    pub fn k_uu(&self) -> Mat<f64> {
        let n = self.n_pde;
        Mat::from_fn(n, n, |i, j| self.jjt[(i, j)] * self.w[j])
    }

    /// K_bb = w_b J_b J_b^T.
    pub fn k_bb(&self) -> Mat<f64> {
        let (o, n) = (self.n_pde, self.n_bc());
        Mat::from_fn(n, n, |i, j| self.jjt[(o + i, o + j)] * self.w[o + j])
    }

    /// K_uu row by row: the layout of `mspinn ntk --save-matrix`'s .npy files and of the
    /// Python package's arrays, which take this buffer without a copy. Each entry is the
    /// product [`DenseNtk::k_uu`] forms, so all three agree bit for bit.
    pub fn k_uu_row_major(&self) -> Vec<f64> {
        let n = self.n_pde;
        (0..n * n)
            .map(|k| self.jjt[(k / n, k % n)] * self.w[k % n])
            .collect()
    }

    /// The full K = J J^T D row by row (see [`DenseNtk::k_uu_row_major`]); its leading
    /// N_c × N_c block is K_uu entry for entry.
    pub fn k_row_major(&self) -> Vec<f64> {
        let n = self.n();
        (0..n * n)
            .map(|k| self.jjt[(k / n, k % n)] * self.w[k % n])
            .collect()
    }

    /// D^½ J J^T D^½: similar to K, so it has K's (real, non-negative) eigenvalues.
    pub fn symmetrised(&self) -> Mat<f64> {
        let s: Vec<f64> = self.w.iter().map(|w| w.sqrt()).collect();
        Mat::from_fn(self.n(), self.n(), |i, j| s[i] * self.jjt[(i, j)] * s[j])
    }

    pub fn k_uu_fro(&self) -> f64 {
        frobenius(&self.k_uu())
    }
    pub fn k_bb_fro(&self) -> f64 {
        frobenius(&self.k_bb())
    }
    pub fn k_fro(&self) -> f64 {
        frobenius(&self.k())
    }
    pub fn k_uu_trace(&self) -> f64 {
        (0..self.n_pde).map(|i| self.jjt[(i, i)] * self.w[i]).sum()
    }
    /// max |(K_uu)_ij|; for a PSD matrix it is the largest diagonal entry.
    pub fn k_uu_max_entry(&self) -> f64 {
        let k = self.k_uu();
        let mut m = 0.0f64;
        for j in 0..k.ncols() {
            for i in 0..k.nrows() {
                m = m.max(k[(i, j)].abs());
            }
        }
        m
    }
    pub fn k_uu_spectrum(&self, unit_roundoff: f64) -> Result<Spectrum> {
        Spectrum::of_symmetric(&self.k_uu(), unit_roundoff)
    }
    pub fn k_spectrum(&self, unit_roundoff: f64) -> Result<Spectrum> {
        Spectrum::of_symmetric(&self.symmetrised(), unit_roundoff)
    }
}

/// J Jᵀ of a CPU tensor J in its own dtype T through faer's triangular product (lower triangle,
/// rayon threads), returned symmetric in f64.
fn lower_jjt<T: WithDType + faer::traits::ComplexField>(j: &Tensor) -> Result<Mat<f64>> {
    let (n, p) = j.dims2()?;
    let v: Vec<T> = j.flatten_all()?.to_vec1()?;
    let jm = MatRef::from_row_major_slice(&v, n, p);
    let mut lower = Mat::<T>::zeros(n, n);
    syrk_lower(lower.as_mut(), Accum::Replace, jm, Side::Rows);
    Ok(Mat::from_fn(n, n, |a, b| {
        let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
        lower[(hi, lo)].to_f64()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The CPU triangular path against candle's full product, in f32 and f64, on N ≠ N_p.
    #[test]
    fn triangular_host_product_equals_the_full_matmul() {
        let (n, p) = (37, 23);
        let v: Vec<f64> = (0..n * p).map(|k| (k as f64 * 0.37).sin()).collect();
        for dt in [DType::F64, DType::F32] {
            let j = Tensor::from_vec(v.clone(), (n, p), &Device::Cpu)
                .unwrap()
                .to_dtype(dt)
                .unwrap();
            let got = DenseNtk::from_jacobian(&j, &vec![1.0; n], n).unwrap().jjt;
            let want = to_faer(&j.matmul(&j.t().unwrap()).unwrap()).unwrap();
            let tol = if dt == DType::F64 { 1e-13 } else { 1e-5 };
            for a in 0..n {
                for b in 0..n {
                    assert!(
                        (got[(a, b)] - want[(a, b)]).abs() <= tol * p as f64,
                        "{dt:?} ({a}, {b}): {} vs {}",
                        got[(a, b)],
                        want[(a, b)]
                    );
                    assert_eq!(got[(a, b)], got[(b, a)]);
                }
            }
        }
    }

    /// The row-major buffers hold K and K_uu entry for entry, in row order, with K_uu the
    /// leading block of K.
    #[test]
    fn row_major_buffers_are_k_and_its_leading_block() {
        let (n, p, nc) = (7, 4, 5);
        let v: Vec<f64> = (0..n * p).map(|k| (k as f64 * 0.53).cos()).collect();
        let j = Tensor::from_vec(v, (n, p), &Device::Cpu).unwrap();
        let w = [0.2, 0.2, 0.2, 0.2, 0.2, 3.0, 3.0];
        let d = DenseNtk::from_jacobian(&j, &w, nc).unwrap();
        let (k, kuu) = (d.k(), d.k_uu());
        let (rk, ruu) = (d.k_row_major(), d.k_uu_row_major());
        for a in 0..n {
            for b in 0..n {
                assert_eq!(rk[a * n + b].to_bits(), k[(a, b)].to_bits());
                if a < nc && b < nc {
                    assert_eq!(ruu[a * nc + b].to_bits(), kuu[(a, b)].to_bits());
                    assert_eq!(ruu[a * nc + b].to_bits(), rk[a * n + b].to_bits());
                }
            }
        }
    }
}
