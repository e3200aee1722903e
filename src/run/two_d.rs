//! 2-D runs (issue 18): a run file whose `[problem]` table has `domain = [[x0, x1], [y0, y1]]`
//! is a [`Problem2dConfig`], trained and measured here with the same `[network]`, `[points]`
//! and `[training]` tables (and command-line overrides) as a 1-D run. The network takes
//! x ∈ ℝ² and is evaluated by the CPU engine's 2-D jets through the unchanged seam; the
//! trainer, L-BFGS, LM and the NTK module are the 1-D ones.
//!
//! Outputs of `train`: config.toml, result.json (rel L2 / L∞ of every trial against the
//! reference on a grid: the closed form when the file gives `exact`/`manufactured`, the
//! finite-volume solution otherwise), trial-k/{metrics.csv, weights.safetensors}, and
//! heatmaps of u_NN, the reference, |u_NN − u| and a(x/ε) for the median trial.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;
use mspinn_model::{Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{
    boundary_points, collocation_2d, parse_point_kind_2d, Problem2d, Problem2dConfig,
};
use mspinn_train::metrics::median;
use mspinn_train::{Schedule, TrainOptions, Trainer};
use serde::{Deserialize, Serialize};

use crate::args::{dtype_name, parse_dtype};
use crate::config::{parse_toml, ProblemConfig};
use crate::output::{build_info, claim_run_dir, run_dir, write_json, write_toml, FolderMode};
use crate::run::spec::{NetworkSpec, PointsSpec, TrainingSpec};
use crate::run::{Overrides, TrainSpec};

/// Grid side of the evaluation grid (and of the heatmaps).
pub const EVAL_SIDE: usize = 101;
/// Relative accuracy asked of the finite-volume reference when no closed form is known.
pub const REFERENCE_TARGET: f64 = 1e-4;

/// A 2-D run: config.toml of its folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec2d {
    pub problem: Problem2dConfig,
    pub network: NetworkSpec,
    pub points: PointsSpec,
    pub training: TrainingSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile2d {
    problem: Problem2dConfig,
    network: Option<NetworkSpec>,
    points: Option<PointsSpec>,
    training: Option<TrainingSpec>,
}

/// Whether the run file at `path` is a 2-D one: its `[problem]` domain is a pair of pairs.
/// A file that does not parse is left to the 1-D reader, whose errors name the field.
pub fn is_2d_run_file(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(v) = text.parse::<toml::Table>() else {
        return false;
    };
    matches!(
        v.get("problem")
            .and_then(|p| p.get("domain"))
            .and_then(|d| d.as_array())
            .and_then(|a| a.first()),
        Some(toml::Value::Array(_))
    )
}

impl TrainSpec2d {
    /// Reads a 2-D run file; missing tables take the 1-D defaults, except the points, which
    /// default to 64 × 64 midpoints.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let f: RunFile2d = parse_toml(&text, &path.display().to_string())?;
        Ok(Self {
            problem: f.problem,
            network: f.network.unwrap_or_default(),
            points: f.points.unwrap_or(PointsSpec {
                kind: "midpoints".into(),
                n: 4096,
            }),
            training: f.training.unwrap_or_default(),
        })
    }

    /// The command line's overrides, applied by the 1-D rules (the same flags mean the same).
    pub fn with_overrides(self, o: &Overrides) -> Result<Self> {
        let one_d = TrainSpec {
            problem: ProblemConfig::default(),
            network: self.network,
            points: self.points,
            training: self.training,
        }
        .with_overrides(o)?;
        let mut problem = self.problem;
        if let Some(e) = o.eps {
            problem.eps = Some(mspinn_problem::two_d::NumberExpr::Number(e));
        }
        Ok(Self {
            problem,
            network: one_d.network,
            points: one_d.points,
            training: one_d.training,
        })
    }
}

/// The PDE and boundary rows of `problem` on the collocation set `kind`/`n` (seeded by `seed`
/// for uniform points); boundary points: 4·⌈√n⌉, as many per side as a midpoint grid has.
pub fn residual_set(
    problem: &Problem2d,
    kind: &str,
    n: usize,
    seed: u64,
    lambda: f64,
    dtype: candle_core::DType,
) -> Result<ResidualSet> {
    let pts = collocation_2d(problem.domain, parse_point_kind_2d(kind, n, seed)?)
        .with_context(|| format!("--points {kind} --nc {n}"))?;
    let nb = 4 * (n as f64).sqrt().ceil().max(1.0) as usize;
    let bpts = boundary_points(problem.domain, nb)?;
    Ok(ResidualSet::new_2d(
        &problem.pde_rows(&pts)?,
        &problem.boundary_rows(&bpts)?,
        lambda,
        dtype,
        &Device::Cpu,
    )?)
}

/// The evaluation grid: EVAL_SIDE² points (x fastest, both ends included) and the reference.
pub struct Grid2d {
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    /// Row-major (x, y) pairs, x fastest.
    pub flat: Vec<f64>,
    pub exact: Vec<f64>,
}

impl Grid2d {
    pub fn new(problem: &Problem2d) -> Result<Self> {
        let s = EVAL_SIDE - 1;
        let ts: Vec<f64> = (0..=s).map(|i| i as f64 / s as f64).collect();
        let pts: Vec<[f64; 2]> = ts
            .iter()
            .flat_map(|&t| ts.iter().map(move |&sx| problem.domain.lerp(sx, t)))
            .collect();
        let exact = problem
            .reference_solution(&pts, REFERENCE_TARGET)
            .context("the reference solution")?;
        Ok(Self {
            xs: ts.iter().map(|&t| problem.domain.lerp(t, 0.0)[0]).collect(),
            ys: ts.iter().map(|&t| problem.domain.lerp(0.0, t)[1]).collect(),
            flat: pts.iter().flatten().copied().collect(),
            exact,
        })
    }

    /// Values on the grid as the heatmap's `values[i][j]` at (xs[i], ys[j]).
    fn columns(&self, v: &[f64]) -> Vec<Vec<f64>> {
        let n = self.xs.len();
        (0..n)
            .map(|i| (0..self.ys.len()).map(|j| v[j * n + i]).collect())
            .collect()
    }
}

/// ‖p − e‖₂/‖e‖₂ and max|p − e|/max|e| over the grid.
pub fn relative_errors(pred: &[f64], exact: &[f64]) -> (f64, f64) {
    let (mut num, mut den, mut linf, mut emax) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (p, e) in pred.iter().zip(exact) {
        num += (p - e) * (p - e);
        den += e * e;
        linf = linf.max((p - e).abs());
        emax = emax.max(e.abs());
    }
    (num.sqrt() / den.sqrt(), linf / emax)
}

/// What a 2-D `train` writes to result.json.
#[derive(Clone, Debug, Serialize)]
pub struct TrainResult2d {
    pub problem: String,
    pub eps: f64,
    pub dim: usize,
    pub schedule: String,
    pub nc: usize,
    pub nb: usize,
    pub np: usize,
    pub engine: String,
    pub dtype: String,
    pub seeds: Vec<u64>,
    /// Per trial, against the reference on the EVAL_SIDE² grid.
    pub rel_l2: Vec<f64>,
    pub rel_linf: Vec<f64>,
    pub final_loss: Vec<f64>,
    pub iterations: Vec<u64>,
    pub trial_seconds: Vec<f64>,
    /// "closed form" or "finite volume".
    pub reference: String,
    pub grid_side: usize,
    pub seconds: f64,
    pub build: crate::output::BuildInfo,
}

/// Trains every trial of `spec` one after the other (each on one core's CPU engine), then
/// measures and plots; `opts` carries the engine choice and the interrupt flag.
pub fn run_trials_2d(
    spec: &TrainSpec2d,
    out: &Path,
    mode: FolderMode,
    opts: TrainOptions,
) -> Result<TrainResult2d> {
    let start = std::time::Instant::now();
    anyhow::ensure!(spec.training.trials >= 1, "--trials must be at least 1");
    let problem = spec.problem.build(None).context("problem")?;
    let dtype = parse_dtype(&spec.training.dtype)?;
    let schedule: Schedule = spec.training.schedule.parse()?;
    let set = residual_set(
        &problem,
        &spec.points.kind,
        spec.points.n,
        spec.network.seed,
        spec.training.lambda,
        dtype,
    )?;
    let grid = Grid2d::new(&problem)?;
    let _lock = claim_run_dir(out, mode)?;
    write_toml(&out.join("config.toml"), spec)?;
    let mut preds = Vec::new();
    let mut r = TrainResult2d {
        problem: problem.name.clone(),
        eps: problem.eps,
        dim: 2,
        schedule: schedule.to_string(),
        nc: set.n_pde,
        nb: set.n_bc,
        np: 0,
        engine: opts.engine.resolve(&Device::Cpu).name().into(),
        dtype: dtype_name(dtype).into(),
        seeds: Vec::new(),
        rel_l2: Vec::new(),
        rel_linf: Vec::new(),
        final_loss: Vec::new(),
        iterations: Vec::new(),
        trial_seconds: Vec::new(),
        reference: if problem.exact.is_some() {
            "closed form".into()
        } else {
            "finite volume".into()
        },
        grid_side: EVAL_SIDE,
        seconds: 0.0,
        build: build_info(),
    };
    for k in 0..spec.training.trials {
        let seed = spec
            .network
            .seed
            .checked_add(k as u64)
            .context("--seed + trial passes 2^64 − 1")?;
        let cfg = MlpConfig::new(
            spec.network.widths.clone(),
            spec.network.activation,
            spec.network.init,
            seed,
        )
        .with_input_dim(2);
        let mlp = Mlp::new(cfg, dtype, &Device::Cpu)?;
        r.np = mlp.num_params();
        let tdir = out.join(format!("trial-{k:03}"));
        run_dir(&tdir)?;
        let mut o = opts.clone();
        o.run_dir = Some(tdir.clone());
        o.lbfgs.memory = spec.training.lbfgs_memory;
        o.lm.space = spec.training.lm_space;
        o.lm.damping = spec.training.lm_damping;
        o.lm.tau = spec.training.lm_tau;
        o.log_every = spec.training.log_every;
        o.checkpoint_every = spec.training.checkpoint_every;
        let outcome = Trainer::new(&mlp, &set, &schedule, o).run(false)?;
        anyhow::ensure!(outcome.completed, "trial {k} was interrupted");
        mlp.save(&tdir.join("weights.safetensors"))?;
        let pred = mlp.eval_points_nd(&grid.flat)?;
        let (l2, linf) = relative_errors(&pred, &grid.exact);
        eprintln!(
            "trial {k} (seed {seed}): loss {:.3e}, rel L2 {l2:.3e}, rel L∞ {linf:.3e}, {:.1} s",
            outcome.final_loss.total, outcome.seconds
        );
        r.seeds.push(seed);
        r.rel_l2.push(l2);
        r.rel_linf.push(linf);
        r.final_loss.push(outcome.final_loss.total);
        r.iterations.push(outcome.iterations);
        r.trial_seconds.push(outcome.seconds);
        preds.push(pred);
    }
    r.seconds = start.elapsed().as_secs_f64();
    write_json(&out.join("result.json"), &r)?;
    // The median trial's pictures; the numbers are on disk already, so a plot that cannot be
    // drawn is a warning.
    let med = median(&r.rel_l2);
    let k = (0..r.rel_l2.len())
        .min_by(|&a, &b| {
            (r.rel_l2[a] - med)
                .abs()
                .total_cmp(&(r.rel_l2[b] - med).abs())
        })
        .unwrap_or(0);
    if let Err(e) = heatmaps(out, &problem, &grid, &preds[k]) {
        eprintln!(
            "warning: results in {}, but the heatmaps failed: {e:#}",
            out.display()
        );
    }
    Ok(r)
}

/// u_NN, the reference, |u_NN − u| (log colour) and a(x/ε) as heatmaps in `out`.
pub fn heatmaps(out: &Path, problem: &Problem2d, grid: &Grid2d, pred: &[f64]) -> Result<()> {
    use crate::plot::heatmap;
    let err: Vec<f64> = pred
        .iter()
        .zip(&grid.exact)
        .map(|(p, e)| (p - e).abs())
        .collect();
    let n = grid.xs.len();
    let a: Vec<f64> = (0..grid.exact.len())
        .map(|i| problem.a_at([grid.xs[i % n], grid.ys[i / n]]))
        .collect();
    let eps = problem.eps;
    for (name, title, v, log) in [
        ("u_nn", format!("u_NN (ε = {eps})"), pred, false),
        (
            "u_ref",
            format!("reference u (ε = {eps})"),
            &grid.exact[..],
            false,
        ),
        ("error", format!("|u_NN − u| (ε = {eps})"), &err[..], true),
        ("coefficient", format!("a(x/ε) (ε = {eps})"), &a[..], false),
    ] {
        heatmap(
            &out.join(name),
            &title,
            "x",
            "y",
            &grid.xs,
            &grid.ys,
            &grid.columns(v),
            log,
        )?;
    }
    Ok(())
}
