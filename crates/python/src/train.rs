//! `mspinn.train`: one trial of `mspinn train` — the same network draw, collocation points,
//! residual set, trainer options and schedule syntax, the metrics grid and the paper's metrics
//! — with the history in memory instead of a run folder, the GIL released, Ctrl-C stopping it
//! between two iterations, and progress reported to a Python callable.

use std::sync::{Arc, Mutex, PoisonError};

use mspinn_model::size_plan::{available_memory, check_fits, training_bytes, TrainingSize};
use mspinn_model::{Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{collocation, ProblemError};
use mspinn_train::metrics::{rel_l2, rel_linf, summarise, METRICS_GRID_POINTS};
use mspinn_train::{Phase, Progress, Schedule, TrainOptions, TrainOutcome, Trainer};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::background::run_watched;
use crate::errors::{arg, Error, Result};
use crate::network::Network;
use crate::problem::Problem;

/// The error against the reference at one logged iteration: (iteration, seconds, rel L∞, rel L2).
type ErrorRow = (u64, f64, f64, f64);

/// Trains one network on ``problem`` (see ``mspinn.train`` for the arguments). Returns a dict:
/// ``network``, ``rows`` (the metrics.csv columns), ``errors`` (history.csv's), ``summary``
/// (result.json's metrics as JSON, or None without a reference), ``final_loss``,
/// ``iterations``, ``lbfgs_iterations``, ``seconds``, ``nc``.
#[pyfunction]
#[pyo3(signature = (problem, schedule, *, network=None, widths=None, activation=None, init=None, seed=None, nc=1024, points="endpoints", lam=2.0, dtype=None, device=None, engine=None, engine_threads=1, engine_tile=128, log_every=100, lbfgs_memory=50, lm_space="auto", lm_damping="marquardt", lm_tau=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    problem: &Problem,
    schedule: &str,
    network: Option<&Network>,
    widths: Option<Vec<usize>>,
    activation: Option<&str>,
    init: Option<&str>,
    seed: Option<u64>,
    nc: usize,
    points: &str,
    lam: f64,
    dtype: Option<&str>,
    device: Option<&str>,
    engine: Option<&str>,
    engine_threads: usize,
    engine_tile: usize,
    log_every: u64,
    lbfgs_memory: usize,
    lm_space: &str,
    lm_damping: &str,
    lm_tau: Option<f64>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let schedule: Schedule = schedule.parse().map_err(Error::from)?;
    let mlp = network_to_train(network, widths, activation, init, seed, dtype, device)?;
    let seed = seed.unwrap_or(mlp.config().seed);
    if !lam.is_finite() || lam < 0.0 {
        return Err(arg("lam", format!("{lam}: must be finite and >= 0")).into());
    }
    if lbfgs_memory == 0 {
        return Err(arg(
            "lbfgs_memory",
            "0: L-BFGS keeps at least one correction pair",
        )
        .into());
    }
    let mut opts = TrainOptions {
        log_every,
        engine: args::engine(engine, engine_threads, engine_tile)?,
        ..Default::default()
    };
    opts.lbfgs.memory = lbfgs_memory;
    opts.lm.space = args::lm_space(lm_space)?;
    opts.lm.damping = args::lm_damping(lm_damping)?;
    if let Some(t) = lm_tau {
        if !(t.is_finite() && t > 0.0) {
            return Err(arg(
                "lm_tau",
                format!("{t}: the initial damping must be finite and > 0"),
            )
            .into());
        }
        opts.lm.tau = t;
    }
    check_size(&mlp, nc, &schedule, lbfgs_memory)?;
    let spec = args::points(points, nc, seed)?;
    let p = &problem.inner;
    let outcome = run_watched(py, progress.as_ref(), |watch| -> Result<_> {
        let x = collocation(p.domain, spec)?;
        let set = ResidualSet::new(
            &p.pde_rows(&x)?,
            &p.boundary_rows(),
            lam,
            mlp.dtype(),
            mlp.device(),
        )?;
        // The metrics grid and its reference; a problem without one trains without errors.
        let reference = match p.reference_on_grid(METRICS_GRID_POINTS) {
            Ok(r) => Some(r),
            Err(ProblemError::NoReference { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let errors: Arc<Mutex<Vec<ErrorRow>>> = Arc::default();
        if let Some((grid, exact)) = reference.clone() {
            let sink = errors.clone();
            // As the CLI's history.csv hook: the error of the network at every logged iteration.
            opts.on_log = Some(Arc::new(move |it: u64, seconds: f64, m: &Mlp| {
                if let Ok(pred) = m.eval_points(&grid) {
                    sink.lock().unwrap_or_else(PoisonError::into_inner).push((
                        it,
                        seconds,
                        rel_linf(&pred, &exact),
                        rel_l2(&pred, &exact),
                    ));
                }
            }));
        }
        opts.progress = Progress::Bar(watch.bar.clone());
        opts.interrupt = Some(watch.stop);
        let outcome = Trainer::new(&mlp, &set, &schedule, opts).run(false)?;
        let summary = match &reference {
            Some((grid, exact)) if outcome.completed => {
                let ubar = p.homogenized_solution(grid)?;
                Some(summarise(&[mlp.eval_points(grid)?], exact, ubar.as_deref()))
            }
            _ => None,
        };
        let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(PoisonError::into_inner));
        Ok((outcome, errors, summary, set.n_pde))
    })??;
    let (outcome, errors, summary, n_pde) = outcome;
    if !outcome.completed {
        // Stopped without a Python exception pending (cannot happen but through the flag).
        return Err(pyo3::exceptions::PyKeyboardInterrupt::new_err(
            "training interrupted",
        ));
    }
    result_dict(py, mlp, &outcome, &errors, summary, n_pde)
}

/// A copy of `network` (in `dtype` on `device` if given), or a fresh one from the options.
#[allow(clippy::too_many_arguments)]
fn network_to_train(
    network: Option<&Network>,
    widths: Option<Vec<usize>>,
    activation: Option<&str>,
    init: Option<&str>,
    seed: Option<u64>,
    dtype: Option<&str>,
    device: Option<&str>,
) -> Result<Mlp> {
    let dtype = dtype.map(args::dtype).transpose()?;
    let device = device.map(args::device).transpose()?;
    match network {
        Some(net) => {
            for (field, given) in [
                ("widths", widths.is_some()),
                ("activation", activation.is_some()),
                ("init", init.is_some()),
            ] {
                if given {
                    return Err(arg(
                        field,
                        "give either a network to train or its options, not both",
                    ));
                }
            }
            let m = &net.mlp;
            Ok(m.to(
                dtype.unwrap_or(m.dtype()),
                device.as_ref().unwrap_or(m.device()),
            )?)
        }
        None => {
            let cfg = MlpConfig::new(
                widths.unwrap_or_else(|| vec![40; 4]),
                args::activation(activation.unwrap_or("tanh"))?,
                args::init(init.unwrap_or("glorot-normal"))?,
                seed.unwrap_or(0),
            );
            Ok(Mlp::new(
                cfg,
                dtype.unwrap_or(candle_core::DType::F64),
                &device.unwrap_or(candle_core::Device::Cpu),
            )?)
        }
    }
}

/// Refuses a run larger than this machine's memory before anything is allocated, naming `nc`.
fn check_size(mlp: &Mlp, nc: usize, schedule: &Schedule, lbfgs_memory: usize) -> Result<()> {
    if nc == 0 {
        return Err(arg("nc", "0: at least one collocation point"));
    }
    let widths: Vec<u128> = mlp.config().hidden.iter().map(|&w| w as u128).collect();
    let mut size = TrainingSize::new(nc as u128, &widths, 1, mlp.dtype());
    size.second_order = schedule
        .phases
        .iter()
        .any(|p| matches!(p, Phase::Lm { .. } | Phase::Gn { .. }));
    size.lbfgs_memory = lbfgs_memory as u128;
    Ok(check_fits(
        &format!("training (nc = {nc}, widths {:?})", mlp.config().hidden),
        training_bytes(&size),
        available_memory(),
        "lower nc or the widths",
    )?)
}

fn result_dict<'py>(
    py: Python<'py>,
    mlp: Mlp,
    out: &TrainOutcome,
    errors: &[ErrorRow],
    summary: Option<mspinn_train::TrialsSummary>,
    nc: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let rows = PyDict::new(py);
    let r = &out.rows;
    rows.set_item(
        "iteration",
        r.iter()
            .map(|r| r.iteration)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    rows.set_item(
        "phase",
        r.iter()
            .map(|r| r.phase as u64)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    rows.set_item(
        "optimizer",
        r.iter().map(|r| r.optimizer.clone()).collect::<Vec<_>>(),
    )?;
    let col = |f: fn(&mspinn_train::LogRow) -> f64| {
        r.iter().map(f).collect::<Vec<f64>>().into_pyarray(py)
    };
    rows.set_item("lr", col(|r| r.lr))?;
    rows.set_item("loss", col(|r| r.loss))?;
    rows.set_item("loss_pde", col(|r| r.loss_pde))?;
    rows.set_item("loss_bc", col(|r| r.loss_bc))?;
    rows.set_item("seconds", col(|r| r.seconds))?;
    d.set_item("rows", rows)?;
    let e = PyDict::new(py);
    e.set_item(
        "iteration",
        errors
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    e.set_item(
        "seconds",
        errors
            .iter()
            .map(|r| r.1)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    e.set_item(
        "rel_linf",
        errors
            .iter()
            .map(|r| r.2)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    e.set_item(
        "rel_l2",
        errors
            .iter()
            .map(|r| r.3)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    d.set_item("errors", e)?;
    let summary = summary
        .map(|s| serde_json::to_string(&s))
        .transpose()
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    d.set_item("summary", summary)?;
    let fl = &out.final_loss;
    d.set_item("final_loss", (fl.total, fl.pde, fl.bc))?;
    d.set_item("iterations", out.iterations)?;
    d.set_item(
        "lbfgs_iterations",
        out.lbfgs.iter().map(|l| l.iterations).sum::<u64>(),
    )?;
    d.set_item("seconds", out.seconds)?;
    d.set_item("nc", nc)?;
    d.set_item("network", Network { mlp })?;
    Ok(d)
}
