//! `mspinn train`: independent trials of one training setup, the paper's metrics and plots. The
//! flags become a [`TrainSpec`] (a preset, a run file or a run to resume, with [`Overrides`]),
//! which [`run_trials`] trains.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use indicatif::MultiProgress;
use mspinn_train::metrics::median;
use mspinn_train::{Damping, LbfgsOptions, SolveSpace, TrainOptions};

use crate::device::parse_device;
use crate::flags::{
    ActivationKind, DeviceArg, EngineArgs, EpsArg, InitKind, PointsKind, Precision, QuietArg,
    WidthsArgs,
};
use crate::output::FolderMode;
use crate::run::{preset_spec, run_trials, Overrides, TrainResult, TrainSpec};

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
    #[command(flatten)]
    pub eps: EpsArg,
    #[command(flatten)]
    pub widths: WidthsArgs,
    /// Hidden-layer activation.
    #[arg(long, value_enum, ignore_case = true)]
    pub activation: Option<ActivationKind>,
    /// Weight initialisation.
    #[arg(long, value_enum, ignore_case = true)]
    pub init: Option<InitKind>,
    /// Number of collocation (or regression) points.
    #[arg(long)]
    pub nc: Option<usize>,
    /// Point layout: endpoints (equispaced incl. both ends), midpoints or random.
    #[arg(long, value_enum, ignore_case = true)]
    pub points: Option<PointsKind>,
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
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// f32 or f64 [default: the preset's or run file's].
    #[arg(long, value_enum)]
    pub dtype: Option<Precision>,
    /// Log the loss every this many iterations [default: 100, or the resumed run's].
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Checkpoint every this many iterations [default: 5000, or the resumed run's].
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Run folder (it must not hold another run unless --overwrite or --resume).
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// Replace the run in --out: its config, results and trial folders are removed first.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
}

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

impl TrainArgs {
    /// The flags that change a spec.
    pub fn overrides(&self) -> Result<Overrides> {
        Ok(Overrides {
            eps: self.eps.eps,
            widths: self.widths.parsed()?,
            depth: self.widths.depth,
            width: self.widths.width,
            activation: self.activation.map(Into::into),
            init: self.init.map(Into::into),
            nc: self.nc,
            points: self.points,
            lambda: self.lambda,
            schedule: self.schedule.clone(),
            lbfgs_iters: self.lbfgs_iters,
            lm_space: self.lm_space,
            lm_damping: self.lm_damping,
            lm_tau: self.lm_tau,
            trials: self.trials,
            seed: self.seed,
            dtype: self.dtype,
            log_every: self.log_every,
            checkpoint_every: self.checkpoint_every,
        })
    }

    /// The spec to train, the run folder and how to treat what it holds.
    pub fn spec(&self) -> Result<(TrainSpec, PathBuf, FolderMode)> {
        let o = self.overrides()?;
        if let Some(dir) = &self.resume {
            return Ok((TrainSpec::resume(dir, &o)?, dir.clone(), FolderMode::Resume));
        }
        let base = match (&self.preset, &self.config) {
            (Some(p), _) => preset_spec(p)?,
            (None, Some(path)) => TrainSpec::from_file(path)?,
            (None, None) => bail!("give --preset NAME, --config FILE.toml or --resume DIR"),
        };
        let mode = if self.overwrite {
            FolderMode::Overwrite
        } else {
            FolderMode::Fresh
        };
        Ok((base.with_overrides(&o)?, self.out.clone(), mode))
    }
}

pub fn run(a: TrainArgs) -> Result<()> {
    if let Some(path) = a
        .config
        .as_ref()
        .filter(|p| crate::run::two_d::is_2d_run_file(p))
    {
        return run_2d(&a, path);
    }
    let (spec, out, mode) = a.spec()?;
    let device = parse_device(&a.device.device)?;
    let multi = (!a.quiet.quiet).then(MultiProgress::new);
    let opts = TrainOptions {
        lbfgs: LbfgsOptions::default(),
        engine: a.engine.config(),
        interrupt: Some(crate::interrupt::install()),
        ..Default::default()
    };
    let r = run_trials(&spec, &device, &out, mode, a.jobs, opts, multi.as_ref())?;
    print_summary(&r, &out);
    Ok(())
}

/// A 2-D run file ([`crate::run::two_d`]): trials one after the other on the CPU engine.
fn run_2d(a: &TrainArgs, path: &Path) -> Result<()> {
    use crate::run::two_d::{run_trials_2d, TrainSpec2d};
    let device = parse_device(&a.device.device)?;
    anyhow::ensure!(
        device.is_cpu(),
        "2-D runs are evaluated by the CPU engine's 2-D jets: use --device cpu"
    );
    let spec = TrainSpec2d::from_file(path)?.with_overrides(&a.overrides()?)?;
    let mode = if a.overwrite {
        FolderMode::Overwrite
    } else {
        FolderMode::Fresh
    };
    let opts = TrainOptions {
        lbfgs: LbfgsOptions::default(),
        engine: a.engine.config(),
        interrupt: Some(crate::interrupt::install()),
        ..Default::default()
    };
    let r = run_trials_2d(&spec, &a.out, mode, opts)?;
    println!(
        "{} (ε = {}), 2-D, {} trials, {:.1} s",
        r.problem,
        r.eps,
        r.rel_l2.len(),
        r.seconds
    );
    println!("  rel L2 (median)      = {:.3e}", median(&r.rel_l2));
    println!("  rel L∞ (median)      = {:.3e}", median(&r.rel_linf));
    println!("  results in {}", a.out.display());
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
