//! Training a spec's trials, one per core, into a run folder: config.toml, one trial-NNN folder
//! each (checkpoints, history.csv, weights), result.json, predictions and plots.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mspinn_model::{Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{collocation, parse_point_kind, PointSpec, Problem};
use mspinn_train::metrics::{summarise, METRICS_GRID_POINTS};
use mspinn_train::{Progress, Schedule, TrainOptions, TrainOutcome, Trainer, TrialsSummary};
use serde::Serialize;

use super::history::{history_hook, HISTORY_HEADER};
use super::outputs::{plot_run, write_predictions};
use super::spec::TrainSpec;
use crate::args::{dtype_name, parse_dtype};
use crate::device::device_name;
use crate::output::{
    build_info, claim_run_dir, run_dir, write_json, write_toml, BuildInfo, FolderMode,
};

/// A run stopped by SIGINT/SIGTERM (or [`TrainOptions::interrupt`]): every trial wrote a
/// checkpoint and flushed its rows; `mspinn train --resume DIR` continues it. `main` exits 130.
#[derive(Debug)]
pub struct Interrupted {
    pub dir: std::path::PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted; checkpoints and histories are on disk. Resume with:\n  mspinn train --resume {}",
            shell_quote(&self.dir.display().to_string())
        )
    }
}

impl std::error::Error for Interrupted {}

/// `s` quoted for a POSIX shell where it needs to be.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The result.json of a training run.
#[derive(Serialize, Clone, Debug)]
pub struct TrainResult {
    pub problem: String,
    pub eps: Option<f64>,
    #[serde(flatten)]
    pub summary: TrialsSummary,
    pub seeds: Vec<u64>,
    pub final_loss: Vec<f64>,
    pub iterations: Vec<u64>,
    pub lbfgs_iterations: Vec<u64>,
    pub lbfgs_evaluations: Vec<u64>,
    pub trial_seconds: Vec<f64>,
    pub seconds: f64,
    /// Per-iteration μ, step norm and time of every lm/gn phase, per trial.
    pub second_order: Vec<Vec<mspinn_train::LmOutcome>>,
    pub device: String,
    /// The evaluator that trained every trial (`cpu` or `candle`).
    #[serde(default)]
    pub engine: String,
    pub dtype: String,
    pub schedule: String,
    pub nc: usize,
    pub np: usize,
    pub build: BuildInfo,
}

/// The state shared by everything that trains: problem, points and residual set.
pub struct Prepared {
    pub problem: Problem,
    pub set: ResidualSet,
    pub schedule: Schedule,
    pub dtype: DType,
    pub device: Device,
}

/// n equispaced points on the problem's domain (both ends) and the reference u there: the grid
/// errors are measured on while training.
pub fn reference_on_grid(problem: &Problem, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    Ok(problem.reference_on_grid(n)?)
}

pub fn prepare(spec: &TrainSpec, device: &Device) -> Result<Prepared> {
    let problem = spec.problem.build(None)?;
    let dtype = parse_dtype(&spec.training.dtype)?;
    let schedule: Schedule = spec.training.schedule.parse()?;
    let pspec: PointSpec = parse_point_kind(&spec.points.kind, spec.points.n, spec.network.seed)?;
    let x = collocation(problem.domain, pspec)?;
    let pde = problem.pde_rows(&x)?;
    let bc = if problem.kind == mspinn_problem::OperatorKind::Regression {
        Default::default()
    } else {
        problem.boundary_rows()
    };
    let set = ResidualSet::new(&pde, &bc, spec.training.lambda, dtype, device)?;
    Ok(Prepared {
        problem,
        set,
        schedule,
        dtype,
        device: device.clone(),
    })
}

/// A finished trial: its network on the metrics grid, its training record, its seed.
pub type TrialOutput = (Vec<f64>, TrainOutcome, u64);

/// Trains every trial of `spec` into `out` and writes result.json, predictions and plots. The
/// folder is locked for the whole run and, unless `mode` resumes or overwrites, must not hold
/// another run ([`claim_run_dir`]).
pub fn run_trials(
    spec: &TrainSpec,
    device: &Device,
    out: &Path,
    mode: FolderMode,
    jobs: Option<usize>,
    opts: TrainOptions,
    multi: Option<&MultiProgress>,
) -> Result<TrainResult> {
    let start = Instant::now();
    let resume = mode == FolderMode::Resume;
    anyhow::ensure!(spec.training.trials >= 1, "--trials must be at least 1");
    // Trial k has seed + k: refuse a seed range that would wrap past 2^64 − 1 (to 0).
    anyhow::ensure!(
        spec.network
            .seed
            .checked_add(spec.training.trials as u64 - 1)
            .is_some(),
        "--seed {} with --trials {}: trial k has seed + k, which passes 2^64 − 1; give a smaller --seed",
        spec.network.seed,
        spec.training.trials
    );
    check_training_size(spec, jobs)?;
    anyhow::ensure!(
        spec.training.lbfgs_memory >= 1,
        "training.lbfgs_memory = 0: L-BFGS keeps at least one correction pair"
    );
    let prep = prepare(spec, device)?;
    // The logging cadence is part of the run (config.toml), so a resume keeps it.
    let mut opts = opts;
    opts.log_every = spec.training.log_every;
    opts.checkpoint_every = spec.training.checkpoint_every;
    let _lock = claim_run_dir(out, mode)?;
    let dir = out.to_path_buf();
    write_toml(&dir.join("config.toml"), spec)?;
    let trials = spec.training.trials;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = jobs
        .unwrap_or(if matches!(device, Device::Cpu) {
            cores
        } else {
            1
        })
        .clamp(1, trials);
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<TrialOutput>>> = Mutex::new(vec![None; trials]);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let (grid, exact) = reference_on_grid(&prep.problem, METRICS_GRID_POINTS)?;
    let (grid_arc, exact_arc) = (Arc::new(grid.clone()), Arc::new(exact.clone()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let k = {
                    let mut n = next.lock().expect("trial queue");
                    let stop = opts.interrupt.is_some_and(|f| f.load(Ordering::SeqCst));
                    if *n >= trials || stop || first_error.lock().expect("error slot").is_some() {
                        return;
                    }
                    *n += 1;
                    *n - 1
                };
                let seed = spec.network.seed + k as u64;
                let probe = (grid_arc.clone(), exact_arc.clone());
                let r = train_one(spec, &prep, &dir, k, seed, resume, &opts, multi, probe);
                match r {
                    Ok(v) => results.lock().expect("results")[k] = Some((v.0, v.1, seed)),
                    Err(e) => {
                        *first_error.lock().expect("error slot") =
                            Some(e.context(format!("trial {k} (seed {seed})")));
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("error slot") {
        return Err(e);
    }
    if opts.interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
        return Err(Interrupted { dir }.into());
    }
    let done: Vec<TrialOutput> = results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.context("internal: a trial produced no result"))
        .collect::<Result<_>>()?;
    let ubar = prep.problem.homogenized_solution(&grid)?;
    let preds: Vec<Vec<f64>> = done.iter().map(|d| d.0.clone()).collect();
    let summary = summarise(&preds, &exact, ubar.as_deref());
    let result = TrainResult {
        problem: prep.problem.name.clone(),
        eps: prep.problem.eps,
        summary,
        seeds: done.iter().map(|d| d.2).collect(),
        final_loss: done.iter().map(|d| d.1.final_loss.total).collect(),
        iterations: done.iter().map(|d| d.1.iterations).collect(),
        lbfgs_iterations: done
            .iter()
            .map(|d| d.1.lbfgs.iter().map(|l| l.iterations).sum())
            .collect(),
        lbfgs_evaluations: done
            .iter()
            .map(|d| d.1.lbfgs.iter().map(|l| l.evaluations).sum())
            .collect(),
        trial_seconds: done.iter().map(|d| d.1.seconds).collect(),
        seconds: start.elapsed().as_secs_f64(),
        second_order: done.iter().map(|d| d.1.second_order.clone()).collect(),
        device: device_name(device),
        engine: opts.engine.resolve(device).name().into(),
        dtype: dtype_name(prep.dtype).into(),
        schedule: prep.schedule.to_string(),
        nc: prep.set.n_pde,
        np: MlpConfig::new(
            spec.network.widths.clone(),
            spec.network.activation,
            spec.network.init,
            0,
        )
        .num_params(),
        build: build_info(),
    };
    write_json(&dir.join("result.json"), &result)?;
    write_predictions(&dir, &grid, &exact, ubar.as_deref(), &preds)?;
    // The results are on disk: a plot that cannot be drawn is a warning, not a failed run.
    if let Err(e) = plot_run(
        &dir,
        &prep.problem,
        &grid,
        &exact,
        ubar.as_deref(),
        &preds,
        &done,
    ) {
        eprintln!(
            "warning: the results are in {}, but the plots could not be drawn: {e:#}",
            dir.display()
        );
    }
    Ok(result)
}

/// Refuses, before anything is allocated, a run whose points, widths and trials need more memory
/// than this machine has, naming the options to change.
fn check_training_size(spec: &TrainSpec, jobs: Option<usize>) -> Result<()> {
    use mspinn_model::size_plan::{available_memory, check_fits, training_bytes, TrainingSize};
    let dtype = parse_dtype(&spec.training.dtype)?;
    let widths: Vec<u128> = spec.network.widths.iter().map(|&w| w as u128).collect();
    let trials = spec.training.trials as u128;
    let mut size = TrainingSize::new(spec.points.n as u128, &widths, trials, dtype);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u128;
    size.concurrent = jobs.map_or(cores, |j| j as u128).clamp(1, trials.max(1));
    let schedule: Schedule = spec.training.schedule.parse()?;
    size.second_order = schedule.phases.iter().any(|p| {
        matches!(
            p,
            mspinn_train::Phase::Lm { .. } | mspinn_train::Phase::Gn { .. }
        )
    });
    size.lbfgs_memory = spec.training.lbfgs_memory as u128;
    check_fits(
        &format!(
            "training (--nc {}, widths {}, --trials {})",
            spec.points.n,
            if spec.network.widths.len() > 6 {
                format!("{} layers", spec.network.widths.len())
            } else {
                format!("{:?}", spec.network.widths)
            },
            spec.training.trials
        ),
        training_bytes(&size),
        available_memory(),
        "lower --nc, --widths/--depth/--width or --trials",
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn train_one(
    spec: &TrainSpec,
    prep: &Prepared,
    dir: &Path,
    k: usize,
    seed: u64,
    resume: bool,
    opts: &TrainOptions,
    multi: Option<&MultiProgress>,
    (grid, exact): (Arc<Vec<f64>>, Arc<Vec<f64>>),
) -> Result<(Vec<f64>, TrainOutcome)> {
    let cfg = MlpConfig::new(
        spec.network.widths.clone(),
        spec.network.activation,
        spec.network.init,
        seed,
    );
    let mlp = Mlp::new(cfg, prep.dtype, &prep.device)?;
    let tdir = dir.join(format!("trial-{k:03}"));
    run_dir(&tdir)?;
    let mut o = opts.clone();
    o.run_dir = Some(tdir.clone());
    o.lbfgs.memory = spec.training.lbfgs_memory;
    o.lm.space = spec.training.lm_space;
    o.lm.damping = spec.training.lm_damping;
    o.lm.tau = spec.training.lm_tau;
    if let Some(m) = multi {
        let bar = m.add(ProgressBar::new(prep.schedule.total_iters()));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("trial {k}"));
        o.progress = Progress::Bar(bar);
    }
    let resume_this = resume && tdir.join("checkpoints").join("checkpoint.json").exists();
    let hist = tdir.join("history.csv");
    if !resume_this || !hist.exists() {
        std::fs::write(&hist, format!("{HISTORY_HEADER}\n"))
            .with_context(|| format!("writing {}", hist.display()))?;
    }
    o.history_files = vec![hist.clone()];
    o.on_log = Some(history_hook(hist, grid.clone(), exact, o.on_log.take()));
    let outcome = Trainer::new(&mlp, &prep.set, &prep.schedule, o.clone()).run(resume_this)?;
    if let Progress::Bar(b) = &o.progress {
        b.finish_with_message(format!("loss {:.3e}", outcome.final_loss.total));
    }
    if !outcome.completed {
        // Stopped early: the checkpoint holds the state; no final weights yet.
        return Ok((Vec::new(), outcome));
    }
    mlp.save(&tdir.join("weights.safetensors"))?;
    Ok((mlp.eval_points(&grid)?, outcome))
}
