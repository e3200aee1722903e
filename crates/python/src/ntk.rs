//! `mspinn.ntk`: the NTK of a network's PINN residuals on a problem, as `mspinn ntk` computes
//! one record of its sweep — the same collocation points, residual rows, evaluator and
//! [`mspinn_ntk::analyse`] — so K_uu equals its `--save-matrix` file bit for bit.

use std::time::Instant;

use mspinn_model::{Mlp, ResidualSet};
use mspinn_ntk::{analyse, Method, NtkOptions, Scaling};
use mspinn_problem::collocation;
use numpy::ndarray::Array2;
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::background::run_watched;
use crate::errors::{arg, Error, Result};
use crate::network::Network;
use crate::problem::Problem;

/// The NTK of ``network``'s residuals on ``problem`` (see ``mspinn.ntk`` for the arguments):
/// a dict with ``report`` (the JSON record of ``mspinn ntk --json``, as a string), ``k`` (the
/// full N × N K = J Jᵀ D, row-major, or None for the Gram method), ``k_uu`` and ``nc``.
#[pyfunction]
#[pyo3(signature = (network, problem, *, nc=256, points="endpoints", seed=None, lam=1.0, scaling="appendix", method="auto", top_k=3, full_spectrum=false, chunk_mb=None, engine=None, engine_threads=1, engine_tile=128, dtype=None, device=None))]
#[allow(clippy::too_many_arguments)]
pub fn ntk<'py>(
    py: Python<'py>,
    network: &Network,
    problem: &Problem,
    nc: usize,
    points: &str,
    seed: Option<u64>,
    lam: f64,
    scaling: &str,
    method: &str,
    top_k: usize,
    full_spectrum: bool,
    chunk_mb: Option<usize>,
    engine: Option<&str>,
    engine_threads: usize,
    engine_tile: usize,
    dtype: Option<&str>,
    device: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts = NtkOptions {
        scaling: match scaling {
            "appendix" => Scaling::Appendix,
            "unscaled" => Scaling::Unscaled,
            s => {
                return Err(arg(
                    "scaling",
                    format!("{s:?}: expected \"appendix\" or \"unscaled\""),
                )
                .into())
            }
        },
        method: Method::parse(method).ok_or_else(|| {
            arg(
                "method",
                format!("{method:?}: expected \"auto\", \"dense\" or \"gram\""),
            )
        })?,
        top_k: top_k.max(1),
        full_spectrum,
        chunk_bytes: match chunk_mb {
            Some(0) => return Err(arg("chunk_mb", "0: at least 1").into()),
            c => c.map(|mb| mb.saturating_mul(1 << 20)),
        },
    };
    if !lam.is_finite() || lam < 0.0 {
        return Err(arg("lam", format!("{lam}: must be finite and >= 0")).into());
    }
    let engine = args::engine(engine, engine_threads, engine_tile)?;
    let mlp: Mlp = match (dtype, device) {
        (None, None) => network.mlp.clone(),
        _ => {
            let dt = dtype
                .map(args::dtype)
                .transpose()?
                .unwrap_or(network.mlp.dtype());
            let dev = match device {
                Some(d) => args::device(d)?,
                None => network.mlp.device().clone(),
            };
            network.mlp.to(dt, &dev).map_err(Error::from)?
        }
    };
    check_size(&mlp, nc, opts.method, chunk_mb)?;
    // The CLI draws random points from the network's seed.
    let spec = args::points(points, nc, seed.unwrap_or(mlp.config().seed))?;
    let p = &problem.inner;
    let (report, dense) = run_watched(py, None, |_| -> Result<_> {
        let x = collocation(p.domain, spec)?;
        let set = ResidualSet::new(
            &p.pde_rows(&x)?,
            &p.boundary_rows(),
            lam,
            mlp.dtype(),
            mlp.device(),
        )?;
        let t = Instant::now();
        let mut evaluator = mspinn_model::evaluator::build(&engine, &mlp)?;
        let (mut report, dense) = analyse(&mut *evaluator, &mlp, &set, &opts)?;
        report.eps = p.eps;
        report.seconds = t.elapsed().as_secs_f64();
        let dense = dense.map(|d| (d.n(), d.k_row_major(), d.k_uu_row_major()));
        Ok((report, dense))
    })??;
    let out = PyDict::new(py);
    let json = serde_json::to_string(&report)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    out.set_item("report", json)?;
    out.set_item("nc", report.nc)?;
    match dense {
        Some((n, k, kuu)) => {
            let m = report.nc;
            let k = Array2::from_shape_vec((n, n), k).map_err(shape)?;
            let kuu = Array2::from_shape_vec((m, m), kuu).map_err(shape)?;
            out.set_item("k", k.into_pyarray(py))?;
            out.set_item("k_uu", kuu.into_pyarray(py))?;
        }
        None => {
            out.set_item("k", py.None())?;
            out.set_item("k_uu", py.None())?;
        }
    }
    Ok(out)
}

fn shape(e: numpy::ndarray::ShapeError) -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(format!("internal: K's shape: {e}"))
}

/// Refuses, before anything is allocated, an NTK larger than this machine's memory (as the
/// CLI's `--nc` check does), naming `nc`.
fn check_size(mlp: &Mlp, nc: usize, method: Method, chunk_mb: Option<usize>) -> Result<()> {
    use mspinn_model::size_plan;
    let m = match method {
        Method::Auto => size_plan::NtkMethod::Auto,
        Method::Dense => size_plan::NtkMethod::Dense,
        Method::Gram => size_plan::NtkMethod::Gram,
    };
    let w: Vec<u128> = mlp.config().hidden.iter().map(|&x| x as u128).collect();
    let chunk = chunk_mb.map_or(256u128 << 20, |mb| (mb as u128) << 20);
    let needs = size_plan::ntk_bytes(nc as u128 + 2, &w, m, chunk);
    size_plan::check_fits(
        &format!("nc = {nc} ({method:?} NTK)"),
        needs,
        size_plan::available_memory(),
        "lower nc, or the widths",
    )
    .map_err(Error::from)
}
