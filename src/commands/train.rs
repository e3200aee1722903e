//! `mspinn train`: independent trials of one training setup, the paper's metrics and plots.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mspinn_model::{Activation, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{collocation, parse_point_kind, PointSpec, Problem};
use mspinn_train::metrics::{mean_network, median, rel_l2, rel_linf, summarise};
use mspinn_train::{
    Damping, LbfgsOptions, LmOptions, Progress, Schedule, SolveSpace, TrainOptions, TrainOutcome,
    Trainer, TrialsSummary,
};
use serde::{Deserialize, Serialize};

use crate::args::{dtype_name, hidden_widths, parse_dtype};
use crate::config::ProblemConfig;
use crate::device::{device_name, parse_device};
use crate::output::{build_info, run_dir, write_columns, write_json, write_toml, BuildInfo};
use crate::plot::{line_chart, solution_chart, Axes, Series, SeriesStyle};

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// A training setup: fig4-regression, fig4-poisson, fig4-darcy (section 4.2, paper schedules),
    /// freq (eq. 4, Fig. 1).
    #[arg(long, conflicts_with_all = ["config", "resume"])]
    pub preset: Option<String>,
    /// A TOML run file: a [problem] table (see README) and optional [network], [points], [training].
    #[arg(long, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the run in DIR from its checkpoints (same config; Adam phases resume exactly).
    /// With --schedule, phases may be appended: `--resume DIR --schedule "2000@1e-3,lm:1200,lm:2000"`
    /// gives a finished `2000@1e-3,lm:1200` run 2000 more LM iterations (damping restarts at τ);
    /// with --trials, trials are added (trial k has seed + k; finished trials are only evaluated).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// ε (decimal or fraction like 1/32).
    #[arg(long, value_parser = crate::args::parse_number)]
    pub eps: Option<f64>,
    /// Hidden widths, e.g. 40,40,40,40.
    #[arg(long)]
    pub widths: Option<String>,
    /// Number of hidden layers (with --width).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Width of every hidden layer (with --depth).
    #[arg(long)]
    pub width: Option<usize>,
    /// Activation: tanh, sin or softplus.
    #[arg(long)]
    pub activation: Option<String>,
    /// Initialisation: glorot-normal, glorot-uniform or normal.
    #[arg(long)]
    pub init: Option<String>,
    /// Number of collocation (or regression) points.
    #[arg(long)]
    pub nc: Option<usize>,
    /// Point layout: endpoints (equispaced incl. both ends), midpoints, random.
    #[arg(long)]
    pub points: Option<String>,
    /// Boundary weight λ of eq. (7).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Phases, comma separated: ITERS@LR (Adam), lbfgs:MAXITER (L-BFGS), lm:ITERS
    /// (Levenberg–Marquardt), gn:ITERS (damped Gauss–Newton), e.g. "2000@1e-3,lm:900".
    #[arg(long)]
    pub schedule: Option<String>,
    /// Cap on L-BFGS iterations (replaces every lbfgs phase's cap; lm/gn phases keep theirs).
    #[arg(long)]
    pub lbfgs_iters: Option<u64>,
    /// Where lm/gn phases solve (JᵀDJ + μM)δ = −JᵀDr: `parameter` (N_p × N_p Cholesky),
    /// `sample` (N × N, the weighted NTK + μI, Woodbury) or `auto` (the smaller one).
    #[arg(long, value_parser = parse_space)]
    pub lm_space: Option<SolveSpace>,
    /// LM/GN damping matrix M: `marquardt` (diag JᵀDJ, scale-invariant) or `identity` (μI;
    /// then μ has the units of the NTK's eigenvalues).
    #[arg(long, value_parser = parse_damping)]
    pub lm_damping: Option<Damping>,
    /// Initial LM damping τ: μ₀ = τ (marquardt) or τ·max diag JᵀDJ (identity). Default 1e-3.
    #[arg(long)]
    pub lm_tau: Option<f64>,
    /// Independent trials (seeds seed, seed+1, …).
    #[arg(long)]
    pub trials: Option<usize>,
    /// Seed of the first trial.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Trials run at once (default: one per CPU core, at most the number of trials).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32 or f64.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Log the loss every this many iterations.
    #[arg(long, default_value_t = 100)]
    pub log_every: u64,
    /// Checkpoint every this many iterations.
    #[arg(long, default_value_t = 5000)]
    pub checkpoint_every: u64,
    /// Run folder.
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Everything that defines a training run: written as the run folder's config.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSpec {
    pub problem: ProblemConfig,
    pub network: NetworkSpec,
    pub points: PointsSpec,
    pub training: TrainingSpec,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub widths: Vec<usize>,
    pub activation: Activation,
    pub init: Init,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointsSpec {
    pub kind: String,
    pub n: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainingSpec {
    pub schedule: String,
    pub lambda: f64,
    pub trials: usize,
    pub dtype: String,
    pub lbfgs_memory: usize,
    /// Where lm/gn phases solve the damped normal equations: auto, parameter or sample.
    #[serde(default)]
    pub lm_space: SolveSpace,
    /// LM/GN damping matrix: marquardt (diag JᵀJ) or identity.
    #[serde(default)]
    pub lm_damping: Damping,
    /// Initial LM damping τ (μ₀ = τ, or τ·max diag JᵀJ for identity damping).
    #[serde(default = "default_lm_tau")]
    pub lm_tau: f64,
}

fn default_lm_tau() -> f64 {
    LmOptions::default().tau
}

/// A run file may leave out any table but [problem].
#[derive(Deserialize)]
struct RunFile {
    problem: ProblemConfig,
    network: Option<NetworkSpec>,
    points: Option<PointsSpec>,
    training: Option<TrainingSpec>,
}

const FIG4_ADAM_POISSON: &str = "10000@1e-4,10000@1e-5,20000@1e-6,20000@1e-7,lbfgs:15000";
const FIG4_ADAM_DARCY: &str = "10000@1e-3,10000@1e-4,20000@1e-5,20000@1e-6,lbfgs:15000";
const FIG4_REGRESSION: &str = "20000@1e-2,10000@1e-3,lbfgs:15000";

/// The paper's setups. λ = 2 reproduces the boundary term ½(u(−π)² + u(π)²) of section 4.2's
/// losses under eq. (7)'s (λ/N_b) Σ ½ r_b² with N_b = 2; eq. (5)'s ¼λ(…) is λ = 100 as printed.
pub fn preset_spec(name: &str) -> Result<TrainSpec> {
    let net = |w: usize, d: usize| NetworkSpec {
        widths: vec![w; d],
        activation: Activation::Tanh,
        init: Init::GlorotNormal,
        seed: 0,
    };
    let tr = |schedule: &str, lambda: f64, trials: usize| TrainingSpec {
        schedule: schedule.into(),
        lambda,
        trials,
        dtype: "f64".into(),
        lbfgs_memory: 50,
        lm_space: SolveSpace::Auto,
        lm_damping: Damping::Marquardt,
        lm_tau: default_lm_tau(),
    };
    let pts = |n: usize| PointsSpec {
        kind: "endpoints".into(),
        n,
    };
    let eps = Some(1.0 / 32.0);
    Ok(match name {
        // N = ⌈2π/(ε/2)⌉ = 403 equispaced points at ε = 1/32.
        "fig4-regression" => TrainSpec {
            problem: ProblemConfig::from_preset("twoscale-regression", eps),
            network: net(40, 4),
            points: pts(403),
            training: tr(FIG4_REGRESSION, 0.0, 10),
        },
        "fig4-poisson" => TrainSpec {
            problem: ProblemConfig::from_preset("twoscale-poisson", eps),
            network: net(40, 4),
            points: pts(1024),
            training: tr(FIG4_ADAM_POISSON, 2.0, 10),
        },
        "fig4-darcy" => TrainSpec {
            problem: ProblemConfig::from_preset("twoscale-darcy", eps),
            network: net(40, 4),
            points: pts(1024),
            training: tr(FIG4_ADAM_DARCY, 2.0, 10),
        },
        "freq" => TrainSpec {
            problem: ProblemConfig::from_preset("fp-poisson", None),
            network: net(60, 4),
            points: pts(512),
            training: tr("10000@1e-3", 100.0, 1),
        },
        other => bail!(
            "unknown training preset {other:?}; known: fig4-regression, fig4-poisson, fig4-darcy, freq"
        ),
    })
}

/// Applies the command-line overrides to a spec.
fn parse_space(s: &str) -> std::result::Result<SolveSpace, String> {
    match s {
        "auto" => Ok(SolveSpace::Auto),
        "parameter" => Ok(SolveSpace::Parameter),
        "sample" => Ok(SolveSpace::Sample),
        _ => Err(format!("{s:?}: expected auto, parameter or sample")),
    }
}

fn parse_damping(s: &str) -> std::result::Result<Damping, String> {
    match s {
        "marquardt" => Ok(Damping::Marquardt),
        "identity" => Ok(Damping::Identity),
        _ => Err(format!("{s:?}: expected marquardt or identity")),
    }
}

/// A resumed run keeps the configuration it was started with: anything that would change what
/// was already computed is refused rather than silently ignored. Only `--schedule` (to append
/// phases: more LM iterations on a finished run, say) and `--trials` (to add trials) may be given.
fn refuse_overrides_on_resume(a: &TrainArgs) -> Result<()> {
    let given: Vec<&str> = [
        ("--eps", a.eps.is_some()),
        ("--widths", a.widths.is_some()),
        ("--depth", a.depth.is_some()),
        ("--width", a.width.is_some()),
        ("--activation", a.activation.is_some()),
        ("--init", a.init.is_some()),
        ("--nc", a.nc.is_some()),
        ("--points", a.points.is_some()),
        ("--lambda", a.lambda.is_some()),
        ("--lbfgs-iters", a.lbfgs_iters.is_some()),
        ("--lm-space", a.lm_space.is_some()),
        ("--lm-damping", a.lm_damping.is_some()),
        ("--lm-tau", a.lm_tau.is_some()),
        ("--seed", a.seed.is_some()),
        ("--dtype", a.dtype.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    anyhow::ensure!(
        given.is_empty(),
        "--resume continues a run with the config.toml it was started with; {} would change it \
         (only --schedule, to append phases, and --trials, to add trials, may be given)",
        given.join(", ")
    );
    Ok(())
}

fn apply_overrides(mut s: TrainSpec, a: &TrainArgs) -> Result<TrainSpec> {
    if let Some(e) = a.eps {
        s.problem.eps = Some(crate::config::NumberOrString::Number(e));
    }
    s.network.widths = hidden_widths(a.widths.as_deref(), a.depth, a.width, &s.network.widths)?;
    if let Some(act) = &a.activation {
        s.network.activation = Activation::parse(act)
            .with_context(|| format!("--activation {act:?}: expected tanh, sin or softplus"))?;
    }
    if let Some(i) = &a.init {
        s.network.init = Init::parse(i).with_context(|| {
            format!("--init {i:?}: expected glorot-normal, glorot-uniform or normal")
        })?;
    }
    if let Some(seed) = a.seed {
        s.network.seed = seed;
    }
    if let Some(n) = a.nc {
        s.points.n = n;
    }
    if let Some(k) = &a.points {
        s.points.kind = k.clone();
    }
    if let Some(l) = a.lambda {
        s.training.lambda = l;
    }
    if let Some(sc) = &a.schedule {
        s.training.schedule = sc.clone();
    }
    if let Some(cap) = a.lbfgs_iters {
        let mut sched: Schedule = s.training.schedule.parse()?;
        for p in &mut sched.phases {
            if let mspinn_train::Phase::Lbfgs { max_iters } = p {
                *max_iters = cap;
            }
        }
        s.training.schedule = sched.to_string();
    }
    if let Some(v) = a.lm_space {
        s.training.lm_space = v;
    }
    if let Some(v) = a.lm_damping {
        s.training.lm_damping = v;
    }
    if let Some(t) = a.lm_tau {
        anyhow::ensure!(
            t.is_finite() && t > 0.0,
            "--lm-tau {t}: the initial damping must be finite and > 0"
        );
        s.training.lm_tau = t;
    }
    if let Some(t) = a.trials {
        s.training.trials = t;
    }
    if let Some(d) = &a.dtype {
        s.training.dtype = d.clone();
    }
    Ok(s)
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
    let grid = collocation(problem.domain, PointSpec::Endpoints(n))?;
    let exact = problem
        .reference_solution(&grid)?
        .iter()
        .map(|p| p.0)
        .collect();
    Ok((grid, exact))
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
type TrialOutput = (Vec<f64>, TrainOutcome, u64);

/// The error against the reference solution at one logged iteration (history.csv).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub iteration: u64,
    /// Training seconds at that iteration, as in metrics.csv.
    pub seconds: f64,
    pub rel_linf: f64,
    pub rel_l2: f64,
}

pub const HISTORY_HEADER: &str = "iteration,seconds,rel_linf,rel_l2";

/// Reads a trial's history.csv (written as training logs, in every phase).
pub fn read_history(path: &Path) -> Result<Vec<HistoryRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || {
            format!(
                "{} line {}: expected {HISTORY_HEADER}",
                path.display(),
                i + 1
            )
        };
        anyhow::ensure!(f.len() == 4, bad());
        rows.push(HistoryRow {
            iteration: f[0].parse().with_context(bad)?,
            seconds: f[1].parse().with_context(bad)?,
            rel_linf: f[2].parse().with_context(bad)?,
            rel_l2: f[3].parse().with_context(bad)?,
        });
    }
    Ok(rows)
}

/// An `on_log` hook that appends the relative L∞ and L2 errors on the metrics grid to
/// `path` each time the trainer logs, in every phase, so error-vs-iteration curves of
/// first- and second-order optimisers can be compared (the loss alone does not show how far
/// the network is from u). Chains `inner`, the caller's own hook, if any.
fn history_hook(
    path: PathBuf,
    grid: Arc<Vec<f64>>,
    exact: Arc<Vec<f64>>,
    inner: Option<mspinn_train::OnLog>,
) -> mspinn_train::OnLog {
    Arc::new(move |it: u64, seconds: f64, m: &Mlp| {
        if let Some(f) = &inner {
            f(it, seconds, m);
        }
        // A failed probe must not stop training: the row is just missing from history.csv.
        let Ok(pred) = m.eval_points(&grid) else {
            return;
        };
        let line = format!(
            "{it},{seconds:.3},{:e},{:e}\n",
            rel_linf(&pred, &exact),
            rel_l2(&pred, &exact)
        );
        use std::io::Write;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        if let Ok(mut f) = file {
            let _ = f.write_all(line.as_bytes());
        }
    })
}

/// Trains every trial of `spec` into `out` and writes result.json, predictions and plots.
pub fn run_trials(
    spec: &TrainSpec,
    device: &Device,
    out: &Path,
    resume: bool,
    jobs: Option<usize>,
    opts: TrainOptions,
    multi: Option<&MultiProgress>,
) -> Result<TrainResult> {
    let start = Instant::now();
    let prep = prepare(spec, device)?;
    anyhow::ensure!(spec.training.trials >= 1, "--trials must be at least 1");
    let dir = run_dir(out)?;
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
    let (grid, exact) = reference_on_grid(&prep.problem, 1000)?;
    let (grid_arc, exact_arc) = (Arc::new(grid.clone()), Arc::new(exact.clone()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let k = {
                    let mut n = next.lock().expect("trial queue");
                    if *n >= trials || first_error.lock().expect("error slot").is_some() {
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
    plot_run(
        &dir,
        &prep.problem,
        &grid,
        &exact,
        ubar.as_deref(),
        &preds,
        &done,
    )?;
    Ok(result)
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
    o.on_log = Some(history_hook(hist, grid.clone(), exact, o.on_log.take()));
    let outcome = Trainer::new(&mlp, &prep.set, &prep.schedule, o.clone()).run(resume_this)?;
    if let Progress::Bar(b) = &o.progress {
        b.finish_with_message(format!("loss {:.3e}", outcome.final_loss.total));
    }
    mlp.save(&tdir.join("weights.safetensors"))?;
    Ok((mlp.eval_points(&grid)?, outcome))
}

fn write_predictions(
    dir: &Path,
    grid: &[f64],
    exact: &[f64],
    ubar: Option<&[f64]>,
    preds: &[Vec<f64>],
) -> Result<()> {
    let mean = mean_network(preds);
    let nan = vec![f64::NAN; grid.len()];
    let mut names = vec!["x".to_string(), "u".into(), "u_bar".into(), "mean".into()];
    let mut cols: Vec<&[f64]> = vec![grid, exact, ubar.unwrap_or(&nan), &mean];
    for (k, p) in preds.iter().enumerate() {
        names.push(format!("trial_{k}"));
        cols.push(p);
    }
    let nr: Vec<&str> = names.iter().map(String::as_str).collect();
    write_columns(&dir.join("predictions.csv"), &nr, &cols)
}

fn plot_run(
    dir: &Path,
    problem: &Problem,
    grid: &[f64],
    exact: &[f64],
    ubar: Option<&[f64]>,
    preds: &[Vec<f64>],
    done: &[TrialOutput],
) -> Result<()> {
    let mean = mean_network(preds);
    let title = format!("{}: exact, mean network and trials", problem.name);
    let names: Vec<String> = (0..preds.len()).map(|k| format!("trial {k}")).collect();
    let mut s = vec![
        Series {
            name: "exact u",
            x: grid,
            y: exact,
            style: SeriesStyle::Line,
        },
        Series {
            name: "mean network",
            x: grid,
            y: &mean,
            style: SeriesStyle::Dashed,
        },
    ];
    if let Some(ub) = ubar {
        s.push(Series {
            name: "homogenised ū",
            x: grid,
            y: ub,
            style: SeriesStyle::Dashed,
        });
    }
    for (k, p) in preds.iter().enumerate().take(10) {
        s.push(Series {
            name: &names[k],
            x: grid,
            y: p,
            style: SeriesStyle::Line,
        });
    }
    solution_chart(&dir.join("solution"), &title, &s)?;
    let err_mean: Vec<f64> = mean.iter().zip(exact).map(|(a, b)| (a - b).abs()).collect();
    let errs: Vec<Vec<f64>> = preds
        .iter()
        .map(|p| p.iter().zip(exact).map(|(a, b)| (a - b).abs()).collect())
        .collect();
    let mut s = vec![Series {
        name: "|u − mean network|",
        x: grid,
        y: &err_mean,
        style: SeriesStyle::Line,
    }];
    for (k, e) in errs.iter().enumerate().take(10) {
        s.push(Series {
            name: &names[k],
            x: grid,
            y: e,
            style: SeriesStyle::Line,
        });
    }
    line_chart(
        &dir.join("error"),
        &Axes {
            title: "pointwise error",
            x_label: "x",
            y_label: "|error|",
            log_x: false,
            log_y: true,
        },
        &s,
    )?;
    let curves: Vec<(Vec<f64>, Vec<f64>)> = done
        .iter()
        .map(|d| {
            (
                d.1.rows.iter().map(|r| r.iteration as f64 + 1.0).collect(),
                d.1.rows.iter().map(|r| r.loss).collect(),
            )
        })
        .collect();
    let s: Vec<Series> = curves
        .iter()
        .enumerate()
        .take(10)
        .map(|(k, c)| Series {
            name: &names[k],
            x: &c.0,
            y: &c.1,
            style: SeriesStyle::Line,
        })
        .collect();
    plot_history(dir, done.len())?;
    line_chart(
        &dir.join("loss"),
        &Axes {
            title: "training loss",
            x_label: "iteration + 1",
            y_label: "loss",
            log_x: false,
            log_y: true,
        },
        &s,
    )?;
    Ok(())
}

/// error_history.{png,svg}: each trial's relative L∞ error against iteration.
fn plot_history(dir: &Path, trials: usize) -> Result<()> {
    let mut curves = Vec::new();
    for k in 0..trials {
        let h = read_history(&dir.join(format!("trial-{k:03}")).join("history.csv"))?;
        curves.push((
            format!("trial {k}"),
            h.iter().map(|r| r.iteration as f64).collect::<Vec<_>>(),
            h.iter().map(|r| r.rel_linf).collect::<Vec<_>>(),
        ));
    }
    let s: Vec<Series> = curves
        .iter()
        .take(10)
        .map(|c| Series {
            name: &c.0,
            x: &c.1,
            y: &c.2,
            style: SeriesStyle::Line,
        })
        .collect();
    line_chart(
        &dir.join("error_history"),
        &Axes {
            title: "relative L∞ error against the reference solution",
            x_label: "iteration",
            y_label: "max|u − u_NN| / max|u|",
            log_x: false,
            log_y: true,
        },
        &s,
    )
}

pub fn run(a: TrainArgs) -> Result<()> {
    let (spec, out, resume) = if let Some(dir) = &a.resume {
        let text = std::fs::read_to_string(dir.join("config.toml"))
            .with_context(|| format!("--resume {}: no config.toml there", dir.display()))?;
        let mut spec: TrainSpec =
            toml::from_str(&text).with_context(|| format!("{}/config.toml", dir.display()))?;
        refuse_overrides_on_resume(&a)?;
        if let Some(t) = a.trials {
            // Trial k always has seed + k, so more trials add runs without touching the others.
            anyhow::ensure!(
                t >= spec.training.trials,
                "--resume with --trials {t}: the run has {} trials; a resume may add trials, \
                 not drop them",
                spec.training.trials
            );
            spec.training.trials = t;
        }
        if let Some(sc) = &a.schedule {
            let (was, now): (Schedule, Schedule) = (spec.training.schedule.parse()?, sc.parse()?);
            anyhow::ensure!(
                now.extends(&was),
                "--resume with --schedule {sc:?}: the run's schedule {was} must be its beginning \
                 (a resume may append phases, e.g. --schedule \"{was},lm:1000\", not change them)"
            );
            spec.training.schedule = now.to_string();
        }
        (spec, dir.clone(), true)
    } else {
        let base = match (&a.preset, &a.config) {
            (Some(p), _) => preset_spec(p)?,
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let f: RunFile =
                    toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
                let d = preset_spec("fig4-darcy")?;
                TrainSpec {
                    problem: f.problem,
                    network: f.network.unwrap_or(d.network),
                    points: f.points.unwrap_or(d.points),
                    training: f.training.unwrap_or(d.training),
                }
            }
            (None, None) => bail!("give --preset NAME, --config FILE.toml or --resume DIR"),
        };
        (apply_overrides(base, &a)?, a.out.clone(), false)
    };
    let device = parse_device(&a.device)?;
    let multi = (!a.quiet).then(MultiProgress::new);
    let opts = TrainOptions {
        log_every: a.log_every,
        checkpoint_every: a.checkpoint_every,
        lbfgs: LbfgsOptions::default(),
        ..Default::default()
    };
    let r = run_trials(&spec, &device, &out, resume, a.jobs, opts, multi.as_ref())?;
    print_summary(&r, &out);
    Ok(())
}

pub fn print_summary(r: &TrainResult, out: &Path) {
    println!(
        "{} (ε = {:?}), {} trials, {:.1} s",
        r.problem, r.eps, r.summary.trials, r.seconds
    );
    println!(
        "  max |u − E u_NN|     = {:.3e}",
        r.summary.max_error_mean_network
    );
    println!("  mean variance        = {:.3e}", r.summary.mean_variance);
    if let Some(h) = r.summary.max_error_vs_homogenized {
        println!("  max |ū − E u_NN|     = {h:.3e}");
    }
    println!("  rel L2 (median)      = {:.3e}", median(&r.summary.rel_l2));
    println!(
        "  rel L∞ (median)      = {:.3e}",
        median(&r.summary.rel_linf)
    );
    println!("  results in {}", out.display());
}
