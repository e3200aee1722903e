//! What is measured: the Fig. 4 Darcy PINN and the Fig. 2a setting, built as `mspinn train` and
//! `mspinn ntk` build them, one job at a time; and the peak-RSS check over many Adam steps.

use std::time::Instant;

use anyhow::{bail, Result};
use candle_core::{DType, Device};
use indicatif::ProgressBar;
use mspinn_model::evaluator::{self, Evaluator};
use mspinn_model::{Activation, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_model::{EngineConfig, Gradient};
use mspinn_ntk::analysis::param_gram;
use mspinn_ntk::{analyse, DenseNtk, NtkOptions, Scaling};
use mspinn_problem::{collocation, PointSpec, Problem};
use mspinn_train::lm::{gauss_newton_step, Damping, SolveSpace};
use mspinn_train::Adam;

use super::flops;
use super::report::{BenchRecord, RssReport, RssSample};
use super::timing::{gemm_candle, gemm_faer, record, time_calls, Plan};
use crate::args::dtype_name;
use crate::run::{prepare, preset_spec};

/// One measurement: which device (its index in --device), dtype, measure and size.
pub struct Job {
    pub device: usize,
    pub dtype: DType,
    pub measure: &'static str,
    pub nc: usize,
}

/// Times one job; gemm gives two rows on the CPU (candle and faer), the others one. Everything
/// that evaluates the network goes through an evaluator built from `engine`, as in training.
pub fn measure(
    job: &Job,
    engine: &EngineConfig,
    dev: &Device,
    label: &str,
    plan: &Plan,
) -> Result<Vec<BenchRecord>> {
    let dt = job.dtype;
    let mut records = Vec::new();
    match job.measure {
        "gemm" => {
            let n = job.nc;
            let t = gemm_candle(n, dt, dev, plan)?;
            records.push(record(label, dt, "gemm-candle", n, 0, flops::gemm(n), &t));
            if dev.is_cpu() {
                let t = match dt {
                    DType::F32 => gemm_faer::<f32>(n, plan)?,
                    _ => gemm_faer::<f64>(n, plan)?,
                };
                records.push(record(label, dt, "gemm-faer", n, 0, flops::gemm(n), &t));
            }
        }
        "adam" => {
            let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
            let mut adam = Adam::new(mlp.vars())?;
            let mut ev = evaluator::build(engine, &mlp)?;
            load_resident(&mut *ev, &mlp, &set)?;
            let mut grad = Gradient::default();
            let t = time_calls(plan, dev, &mut || {
                trainer_adam_step(&mut *ev, &mlp, &set, &mut adam, &mut grad, 1e-3)
            })?;
            let f = flops::adam_step(&dims, set.len());
            records.push(record(label, dt, "adam", job.nc, mlp.num_params(), f, &t));
        }
        "lbfgs" => {
            let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
            let theta = mlp.flat_params()?;
            let mut ev = evaluator::build(engine, &mlp)?;
            let mut grad = Gradient::default();
            let t = time_calls(plan, dev, &mut || {
                mlp.set_flat_params(&theta)?;
                ev.loss_and_grad(&mlp, &set, &mut grad)?;
                std::hint::black_box(grad.to_f64()?);
                Ok(())
            })?;
            let f = flops::loss_and_grad(&dims, set.len());
            records.push(record(label, dt, "lbfgs", job.nc, mlp.num_params(), f, &t));
        }
        "dense" => {
            let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
            let w = Scaling::Appendix.weights(&set.host_w);
            let nc = set.n_pde;
            let mut ev = evaluator::build(engine, &mlp)?;
            let t = time_calls(plan, dev, &mut || {
                let j = ev.jacobian(&mlp, &set, 0..nc)?;
                std::hint::black_box(DenseNtk::from_jacobian(&j, &w[..nc], nc)?);
                Ok(())
            })?;
            let f = flops::dense_kuu(&dims, nc);
            records.push(record(label, dt, "dense", nc, mlp.num_params(), f, &t));
        }
        "gram" => {
            let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
            let w = Scaling::Appendix.weights(&set.host_w);
            let chunk = NtkOptions::default().chunk_bytes;
            let mut ev = evaluator::build(engine, &mlp)?;
            let t = time_calls(plan, dev, &mut || {
                std::hint::black_box(param_gram(&mut *ev, &mlp, &set, &w, chunk)?);
                Ok(())
            })?;
            let f = flops::gram(&dims, set.n_pde);
            records.push(record(
                label,
                dt,
                "gram",
                set.n_pde,
                mlp.num_params(),
                f,
                &t,
            ));
        }
        "lm" => {
            // One LM iteration's linear algebra: r and J from the engine, the Gram of the
            // normal equations and its damped Cholesky solve (`gauss_newton_step`, the path
            // the LM phase takes; the trial step's extra loss evaluation is left out).
            let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
            let mut ev = evaluator::build(engine, &mlp)?;
            let t = time_calls(plan, dev, &mut || {
                std::hint::black_box(gauss_newton_step(
                    &mut *ev,
                    &mlp,
                    &set,
                    1e-3,
                    SolveSpace::Auto,
                    Damping::default(),
                )?);
                Ok(())
            })?;
            let f = flops::lm_iteration(&dims, set.len());
            records.push(record(label, dt, "lm", job.nc, mlp.num_params(), f, &t));
        }
        "fig2a" => {
            let (mlp, set, dims) = fig2a_setup(dt, dev)?;
            let opts = NtkOptions::default();
            let mut ev = evaluator::build(engine, &mlp)?;
            let t = time_calls(plan, dev, &mut || {
                std::hint::black_box(analyse(&mut *ev, &mlp, &set, &opts)?);
                Ok(())
            })?;
            let f = flops::fig2a(&dims, set.n_pde);
            records.push(record(
                label,
                dt,
                "fig2a",
                set.n_pde,
                mlp.num_params(),
                f,
                &t,
            ));
        }
        other => bail!("internal: unknown measure {other}"),
    }
    Ok(records)
}

/// The Fig. 4 Darcy PINN at `nc` points: its residual set and a fresh seed-0 network.
fn darcy(nc: usize, dtype: DType, dev: &Device) -> Result<(Mlp, ResidualSet, Vec<usize>)> {
    let mut spec = preset_spec("fig4-darcy")?;
    spec.points.n = nc;
    spec.training.dtype = dtype_name(dtype).into();
    let prep = prepare(&spec, dev)?;
    let cfg = MlpConfig::new(
        spec.network.widths.clone(),
        spec.network.activation,
        spec.network.init,
        spec.network.seed,
    );
    let dims = cfg.dims();
    Ok((Mlp::new(cfg, dtype, dev)?, prep.set, dims))
}

/// The Fig. 2a setting at ε = 1/100 (the stiffest of its sweep): 1×50 tanh, N(0,1) init,
/// paper-4.1 coefficient, 256 equispaced points, λ = 1.
fn fig2a_setup(dtype: DType, dev: &Device) -> Result<(Mlp, ResidualSet, Vec<usize>)> {
    let problem = Problem::preset("ntk-4.1", Some(0.01))?;
    let x = collocation(problem.domain, PointSpec::Endpoints(256))?;
    let set = ResidualSet::new(
        &problem.pde_rows(&x)?,
        &problem.boundary_rows(),
        1.0,
        dtype,
        dev,
    )?;
    let cfg = MlpConfig::new(vec![50], Activation::Tanh, Init::Normal, 0);
    let dims = cfg.dims();
    Ok((Mlp::new(cfg, dtype, dev)?, set, dims))
}

/// VmRSS and VmHWM of this process, KiB (Linux; zeros elsewhere).
fn rss_now() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One Adam step as the trainer runs it: the evaluator's loss and gradient, then the update.
/// One iteration of the trainer's Adam loop: the engine's resident Adam where it has one (the
/// GPU engine: loss, gradient and update on the device), else `loss_and_grad` and the host Adam.
/// The resident Adam must have been loaded ([`load_resident`]).
fn trainer_adam_step(
    ev: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    adam: &mut Adam,
    grad: &mut Gradient,
    lr: f64,
) -> Result<()> {
    if let Some(ra) = ev.resident_adam() {
        ra.step(set, lr)?;
        return Ok(());
    }
    ev.loss_and_grad(mlp, set, grad)?;
    adam.step_with(grad, lr)?;
    Ok(())
}

/// Loads θ and fresh moments into the engine's resident Adam, if it has one.
fn load_resident(ev: &mut dyn Evaluator, mlp: &Mlp, set: &ResidualSet) -> Result<()> {
    if let Some(ra) = ev.resident_adam() {
        ra.load(mlp, set, &[], &[], 0)?;
    }
    Ok(())
}

pub fn rss_check(
    engine: &EngineConfig,
    dev: &Device,
    label: &str,
    dtype: DType,
    nc: usize,
    iters: u64,
    bar: &ProgressBar,
) -> Result<RssReport> {
    let (mlp, set, _) = darcy(nc, dtype, dev)?;
    let mut adam = Adam::new(mlp.vars())?;
    let mut ev = evaluator::build(engine, &mlp)?;
    load_resident(&mut *ev, &mlp, &set)?;
    let mut grad = Gradient::default();
    let every = (iters / 50).max(1);
    let warm = iters / 10;
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut hwm_warm = None;
    bar.set_length(iters);
    bar.set_position(0);
    for it in 0..iters {
        trainer_adam_step(&mut *ev, &mlp, &set, &mut adam, &mut grad, 1e-4)?;
        if it + 1 == warm.max(1) {
            hwm_warm = Some(rss_now().1);
        }
        if it % every == 0 || it + 1 == iters {
            dev.synchronize()?;
            let (rss, hwm) = rss_now();
            samples.push(RssSample {
                iteration: it + 1,
                seconds: start.elapsed().as_secs_f64(),
                vm_rss_kib: rss,
                vm_hwm_kib: hwm,
            });
            bar.set_position(it + 1);
            bar.set_message(format!(
                "rss {label} {} N_c={nc}: {} KiB",
                dtype_name(dtype),
                rss
            ));
        }
    }
    let end = rss_now().1;
    let hw = hwm_warm.unwrap_or(end);
    Ok(RssReport {
        device: label.into(),
        dtype: dtype_name(dtype).into(),
        nc,
        iterations: iters,
        seconds: start.elapsed().as_secs_f64(),
        hwm_after_warmup_kib: hw,
        hwm_end_kib: end,
        growth_kib: end as i64 - hw as i64,
        samples,
    })
}
