//! One call from a network and a residual set to every NTK number mspinn reports.

use std::time::Instant;

use candle_core::DType;
use mspinn_model::{Evaluator, Mlp, ResidualSet};
use serde::{Deserialize, Serialize};

use crate::gram::{boundary_grams, GramAccumulator, ParamGram};
use crate::memory::{chunk_budget, for_each_chunk, MIN_CHUNK_ROWS};
use crate::{DenseNtk, Result, Scaling};

/// How K is assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Dense K when N_c ≤ N_p, the parameter-space Gram otherwise.
    #[default]
    Auto,
    /// The N × N matrix K = J J^T D.
    Dense,
    /// G = J^T D J, N_p × N_p, accumulated over chunks of points.
    Gram,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "auto" => Some(Method::Auto),
            "dense" => Some(Method::Dense),
            "gram" => Some(Method::Gram),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Dense => "dense",
            Method::Gram => "gram",
        }
    }
}

#[derive(Clone, Debug)]
pub struct NtkOptions {
    pub scaling: Scaling,
    pub method: Method,
    /// How many of the largest eigenvalues to report.
    pub top_k: usize,
    /// Also return the full spectra (dense: all N; Gram: the N_p nonzero candidates).
    pub full_spectrum: bool,
    /// Memory budget for one chunk of Jacobian rows and its temporaries, in bytes. `None`: 256 MiB
    /// on the CPU, a share of the free device memory on a GPU (see [`crate::memory`]). Either way
    /// a chunk that runs out of device memory is retried at half the rows.
    pub chunk_bytes: Option<usize>,
}

impl Default for NtkOptions {
    fn default() -> Self {
        Self {
            scaling: Scaling::Appendix,
            method: Method::Auto,
            top_k: 3,
            full_spectrum: false,
            chunk_bytes: None,
        }
    }
}

/// Every NTK number for one network and point set. Field names are the JSON keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NtkReport {
    pub eps: Option<f64>,
    pub nc: usize,
    pub nb: usize,
    pub np: usize,
    pub k_uu_fro: f64,
    pub k_bb_fro: f64,
    pub k_fro: f64,
    /// Largest eigenvalues of K_uu, descending.
    pub k_uu_eig_top: Vec<f64>,
    pub k_uu_trace: f64,
    /// max_ij |(K_uu)_ij| (= the largest diagonal entry, K_uu being PSD).
    pub k_uu_max_entry: f64,
    pub k_uu_rank: usize,
    pub k_uu_cond_nonzero: f64,
    /// Largest eigenvalues of K (those of D^½ J J^T D^½), descending.
    pub k_eig_top: Vec<f64>,
    /// λ_max / λ_min of K over its nonzero eigenvalues.
    pub cond_nonzero: f64,
    pub scaling: Scaling,
    pub method: Method,
    pub dtype: String,
    /// The evaluator that computed the Jacobian rows (`cpu` or `candle`).
    #[serde(default)]
    pub engine: String,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_uu_spectrum: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_spectrum: Option<Vec<f64>>,
}

/// Unit round-off of the arithmetic the Jacobian was computed in.
pub fn unit_roundoff(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => f32::EPSILON as f64 / 2.0,
        _ => f64::EPSILON / 2.0,
    }
}

/// Rows per Jacobian chunk so that the chunk and the per-layer outer products fit `bytes`. Off
/// the CPU each row also has its f64 copy and that copy's square (the device-side accumulation
/// widens J to f64 before J^T J).
pub fn chunk_rows(mlp: &Mlp, bytes: usize) -> usize {
    let np = mlp.num_params();
    let mut per_row = np * mlp.dtype().size_in_bytes() * 4;
    if !mlp.device().is_cpu() {
        per_row += np * std::mem::size_of::<f64>() * 2;
    }
    (bytes / per_row.max(1)).clamp(MIN_CHUNK_ROWS, 1 << 16)
}

/// Assembles the NTK of `set` at `mlp` and measures it, with the Jacobian rows from `evaluator`.
/// Returns the dense K too when it was built.
pub fn analyse(
    evaluator: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    opts: &NtkOptions,
) -> Result<(NtkReport, Option<DenseNtk>)> {
    // Validates a fixed budget before any work.
    chunk_budget(mlp.device(), mlp.num_params(), opts.chunk_bytes)?;
    let start = Instant::now();
    let np = mlp.num_params();
    let (nc, nb) = (set.n_pde, set.n_bc);
    let w = opts.scaling.weights(&set.host_w);
    let u = unit_roundoff(mlp.dtype());
    let order = (nc + nb).max(np);
    let method = match opts.method {
        Method::Auto if nc <= np => Method::Dense,
        Method::Auto => Method::Gram,
        m => m,
    };
    let (k_uu_fro, k_bb_fro, k_fro, k_uu_trace, k_uu_max_entry, kuu_spec, k_spec, dense) =
        match method {
            Method::Dense => {
                let j = evaluator.jacobian(mlp, set, 0..nc + nb)?;
                let d = DenseNtk::from_jacobian(&j, &w, nc)?;
                let ks = d.k_uu_spectrum(u)?.rethreshold(order, u);
                let kk = d.k_spectrum(u)?.rethreshold(order, u);
                (
                    d.k_uu_fro(),
                    d.k_bb_fro(),
                    d.k_fro(),
                    d.k_uu_trace(),
                    d.k_uu_max_entry(),
                    ks,
                    kk,
                    Some(d),
                )
            }
            _ => {
                let g = param_gram(evaluator, mlp, set, &w, opts.chunk_bytes)?;
                let ks = g.k_uu_spectrum(u)?.rethreshold(order, u);
                let kk = g.k_spectrum(u)?.rethreshold(order, u);
                (
                    g.k_uu_fro(),
                    g.k_bb_fro(),
                    g.k_fro(),
                    g.k_uu_trace(),
                    g.k_uu_max_entry(),
                    ks,
                    kk,
                    None,
                )
            }
        };
    let report = NtkReport {
        eps: None,
        nc,
        nb,
        np,
        k_uu_fro,
        k_bb_fro,
        k_fro,
        k_uu_eig_top: kuu_spec.top(opts.top_k),
        k_uu_trace,
        k_uu_max_entry,
        k_uu_rank: kuu_spec.rank(),
        k_uu_cond_nonzero: kuu_spec.cond_nonzero(),
        k_eig_top: k_spec.top(opts.top_k),
        cond_nonzero: k_spec.cond_nonzero(),
        scaling: opts.scaling,
        method,
        dtype: format!("{:?}", mlp.dtype()).to_lowercase(),
        engine: evaluator.engine().name().into(),
        seconds: start.elapsed().as_secs_f64(),
        k_uu_spectrum: opts.full_spectrum.then(|| kuu_spec.eigenvalues.clone()),
        k_spectrum: opts.full_spectrum.then(|| k_spec.eigenvalues.clone()),
    };
    Ok((report, dense))
}

/// G_u over chunks of PDE rows, G_b from the boundary rows, with the column weights `w`.
///
/// The chunks' Jacobians and the sum G_u stay on the network's device (cuBLAS on a GPU); only
/// the N_p × N_p results come to the host, where faer computes the eigenvalues. The
/// eigen-decomposition stays on the host on purpose: N_p ≤ ~10⁴ for the networks of this
/// problem, there is one dense symmetric eigen-decomposition per analysis (seconds with faer at
/// N_p = 5000, against the accumulation over up to 10⁶ points that the GPU does take over), and
/// cuSOLVER through cudarc would add a dependency, another link-time library and a second
/// numerical path to keep in agreement with the CPU for little gain.
pub fn param_gram(
    evaluator: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    w: &[f64],
    chunk_bytes: Option<usize>,
) -> Result<ParamGram> {
    let (nc, nb) = (set.n_pde, set.n_bc);
    let np = mlp.num_params();
    let rows = chunk_rows(mlp, chunk_budget(mlp.device(), np, chunk_bytes)?);
    let mut acc = GramAccumulator::new(np);
    for_each_chunk(nc, rows, |s, len| {
        acc.add(&evaluator.jacobian(mlp, set, s..s + len)?)
    })?;
    let (g_u, max_row_sq_u) = acc.finish()?;
    let (g_b, jjt_b) = if nb > 0 {
        boundary_grams(&evaluator.jacobian(mlp, set, nc..nc + nb)?)?
    } else {
        (faer::Mat::zeros(np, np), faer::Mat::zeros(0, 0))
    };
    Ok(ParamGram {
        g_u,
        g_b,
        jjt_b,
        w_u: w[0],
        w_b: if nb > 0 { w[nc] } else { 0.0 },
        n_pde: nc,
        n_bc: nb,
        max_row_sq_u,
    })
}
