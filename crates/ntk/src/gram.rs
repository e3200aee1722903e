//! The parameter-space Gram matrix, for N_c ≫ N_p.
//!
//! The nonzero eigenvalues of D^½ J J^T D^½ (N × N) are those of J^T D J (N_p × N_p), and
//! ‖J J^T‖_F = ‖J^T J‖_F, so every number mspinn reports about K can be had from Gram matrices
//! accumulated chunk by chunk over the points, never forming an N_c × N_c matrix:
//!
//! ```text
//! ‖K_uu‖_F = w_u ‖G_u‖_F,   tr K_uu = w_u tr G_u,   spec K_uu \ {0} = w_u spec G_u \ {0}
//! ‖K‖_F²   = ⟨J^T D² J, J^T J⟩_F = ⟨w_u² G_u + w_b² G_b, G_u + G_b⟩_F
//! spec K \ {0} = spec(w_u G_u + w_b G_b) \ {0}
//! ```
//! with G_u = J_u^T J_u and G_b = J_b^T J_b.

use candle_core::{DType, Tensor};
use faer::{Accum, Mat};

use crate::products::{mirror_lower, syrk_lower, Side};
use crate::spectrum::{frobenius, to_faer, Spectrum};
use crate::{NtkError, Result};

/// Accumulates G = Σ_chunks J_c^T J_c in f64 and the largest row norm ‖J_i‖².
///
/// On the CPU the sum lives in a faer matrix on the host. On a CUDA device it stays in device
/// memory: each chunk is widened to f64 there (the same arithmetic as the CPU path, which also
/// widens before multiplying, so an f32 run differs from the CPU only through J itself), J^T J is
/// one cuBLAS product, and the N_p × N_p sum is copied to the host once, in [`Self::finish`],
/// instead of once per chunk.
pub struct GramAccumulator {
    g: Mat<f64>,
    /// The running sum on the device (non-CPU chunks only).
    g_dev: Option<Tensor>,
    rows: usize,
    max_row_sq: f64,
    /// Only the lower triangle of `g` holds the sum (CPU path); mirrored in `finish`.
    lower_only: bool,
}

impl GramAccumulator {
    pub fn new(np: usize) -> Self {
        Self {
            g: Mat::zeros(np, np),
            g_dev: None,
            rows: 0,
            max_row_sq: 0.0,
            lower_only: false,
        }
    }

    /// Adds a chunk of Jacobian rows (r × N_p); the sum over chunks is kept in f64. On the CPU the
    /// product is a symmetric rank-r update of the lower triangle only (faer's triangular matmul:
    /// half the FLOPs of J^T J); on other devices a full f64 product accumulated there.
    ///
    /// On a device, an error (out of memory above all) leaves the accumulator as it was, so the
    /// caller can retry the same rows in smaller chunks.
    pub fn add(&mut self, j: &Tensor) -> Result<()> {
        let (r, np) = j.dims2()?;
        if np != self.g.nrows() {
            return Err(NtkError::Option {
                field: "jacobian chunk",
                value: format!("{r}×{np}"),
                reason: format!(
                    "the accumulator holds {0}×{0} Gram matrices",
                    self.g.nrows()
                ),
            });
        }
        if j.device().is_cpu() {
            let v: Vec<f64> = j.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
            let jm = faer::MatRef::from_row_major_slice(&v, r, np);
            syrk_lower(self.g.as_mut(), Accum::Add, jm, Side::Columns);
            self.lower_only = true;
            let row_sq: Vec<f64> = j.sqr()?.sum(1)?.to_dtype(DType::F64)?.to_vec1()?;
            self.max_row_sq = row_sq.iter().copied().fold(self.max_row_sq, f64::max);
        } else {
            let j64 = j.to_dtype(DType::F64)?;
            let jtj = j64.t()?.matmul(&j64)?;
            let g_new = match &self.g_dev {
                Some(g) => (g + &jtj)?,
                None => jtj,
            };
            let row_max = j64.sqr()?.sum(1)?.max(0)?.to_scalar::<f64>()?;
            // Commit only now: everything that can fail has run.
            self.g_dev = Some(g_new);
            self.max_row_sq = self.max_row_sq.max(row_max);
        }
        self.rows += r;
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The accumulated G (full, symmetric) and max_i ‖J_i‖²; copies a device sum to the host.
    pub fn finish(mut self) -> Result<(Mat<f64>, f64)> {
        if self.lower_only {
            mirror_lower(&mut self.g);
        }
        if let Some(g) = &self.g_dev {
            self.g += &to_faer(g)?;
        }
        Ok((self.g, self.max_row_sq))
    }
}

/// G_u, G_b and the weights: everything the reports need about K.
pub struct ParamGram {
    pub g_u: Mat<f64>,
    pub g_b: Mat<f64>,
    /// J_b J_b^T (N_b × N_b, tiny), for ‖K_bb‖_F.
    pub jjt_b: Mat<f64>,
    pub w_u: f64,
    pub w_b: f64,
    pub n_pde: usize,
    pub n_bc: usize,
    /// max_i ‖J_u,i‖²: w_u times it is the largest entry of K_uu (PSD ⇒ max on the diagonal).
    pub max_row_sq_u: f64,
}

impl ParamGram {
    pub fn k_uu_fro(&self) -> f64 {
        self.w_u * frobenius(&self.g_u)
    }
    pub fn k_bb_fro(&self) -> f64 {
        self.w_b * frobenius(&self.jjt_b)
    }
    pub fn k_fro(&self) -> f64 {
        let np = self.g_u.nrows();
        let mut s = 0.0;
        for j in 0..np {
            for i in 0..np {
                let (gu, gb) = (self.g_u[(i, j)], self.g_b[(i, j)]);
                s += (self.w_u * self.w_u * gu + self.w_b * self.w_b * gb) * (gu + gb);
            }
        }
        s.max(0.0).sqrt()
    }
    pub fn k_uu_trace(&self) -> f64 {
        let np = self.g_u.nrows();
        self.w_u * (0..np).map(|i| self.g_u[(i, i)]).sum::<f64>()
    }
    pub fn k_uu_max_entry(&self) -> f64 {
        self.w_u * self.max_row_sq_u
    }
    pub fn k_uu_spectrum(&self, unit_roundoff: f64) -> Result<Spectrum> {
        Ok(Spectrum::of_symmetric(&self.g_u, unit_roundoff)?.scaled(self.w_u))
    }
    /// Nonzero spectrum of K via J^T D J.
    pub fn k_spectrum(&self, unit_roundoff: f64) -> Result<Spectrum> {
        let np = self.g_u.nrows();
        let m = Mat::from_fn(np, np, |i, j| {
            self.w_u * self.g_u[(i, j)] + self.w_b * self.g_b[(i, j)]
        });
        Spectrum::of_symmetric(&m, unit_roundoff)
    }
}

/// G_b and J_b J_b^T from the (few) boundary rows.
pub fn boundary_grams(j_b: &Tensor) -> Result<(Mat<f64>, Mat<f64>)> {
    Ok((
        to_faer(&j_b.t()?.matmul(j_b)?)?,
        to_faer(&j_b.matmul(&j_b.t()?)?)?,
    ))
}
