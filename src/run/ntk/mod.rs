//! The NTK of the PINN residuals over sweeps of ε and N_c (Figs. 2 and 3), as a typed request:
//! `mspinn ntk` builds one from its flags, `reproduce` builds the paper's directly.

mod outputs;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use indicatif::{ProgressBar, ProgressStyle};
use mspinn_model::{Activation, EngineConfig, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_ntk::{analyse, Method, NtkOptions, NtkReport, Scaling};
use mspinn_problem::{collocation, parse_point_kind, OperatorKind, Problem};
use mspinn_train::{Progress, Schedule, TrainOptions, Trainer};
use serde::Serialize;

use crate::args::fmt_eps;
use crate::flags::{Operator, PointsKind};
use crate::output::{run_dir, write_npy};

pub use outputs::write_outputs;

/// One NTK sweep: every (ε, N_c, seed) of it gives one record.
#[derive(Clone, Debug)]
pub struct NtkRequest {
    /// The operator, on (−π, π) with zero Dirichlet data.
    pub operator: Operator,
    /// a(y) of the Darcy operator: paper-4.1, paper-4.2 or an expression in y (period 1).
    pub coef: String,
    pub eps: Vec<f64>,
    pub nc: NcRule,
    pub points: PointsKind,
    /// Boundary weight λ.
    pub lambda: f64,
    pub init: Init,
    /// Seed of the first network; `seeds` networks (seed, seed + 1, …) per (ε, N_c).
    pub seed: u64,
    pub seeds: usize,
    pub widths: Vec<usize>,
    pub weights: Weights,
    /// Train each network first with this schedule (Fig. 2b).
    pub train: Option<Schedule>,
    pub options: NtkOptions,
    /// Write K_uu as .npy into this folder for every dense record.
    pub save_matrix: Option<PathBuf>,
    pub device: Device,
    pub dtype: DType,
    /// The evaluator that computes the Jacobian rows (and trains, with `train`).
    pub engine: EngineConfig,
    /// Show a progress bar.
    pub progress: bool,
    /// A 2-D problem (`ntk --config FILE` with a 2-D `[problem]` table) instead of `operator`
    /// and `coef`: its ε is replaced by each of `eps`, the points are a 2-D `points` set
    /// (midpoints, uniform or halton) and the network takes x ∈ ℝ².
    pub problem_2d: Option<mspinn_problem::Problem2dConfig>,
}

/// The collocation counts of each ε.
#[derive(Clone, Debug)]
pub enum NcRule {
    /// These N_c at every ε.
    List(Vec<usize>),
    /// N_c = ⌈C·ε⁻²⌉ (C > 0).
    EpsSquared(f64),
}

/// Where the networks' weights come from.
#[derive(Clone, Debug)]
pub enum Weights {
    /// Initialised from `init` and the seed.
    Fresh,
    /// A safetensors file (`layers.{k}.weight`/`.bias`).
    File(PathBuf),
    /// The final weights of a training run folder (its trial-000/weights.safetensors).
    Checkpoint(PathBuf),
}

impl NtkRequest {
    /// The paper's Fig. 2 setting at these ε: darcy with a = paper-4.1, N_c = 256 equispaced
    /// points, λ = 1, one hidden layer of width 50, N(0,1) init, seed 0, appendix scaling,
    /// three top eigenvalues, f64, no progress bar.
    pub fn fig2(eps: Vec<f64>, device: Device) -> NtkRequest {
        NtkRequest {
            operator: Operator::Darcy,
            coef: "paper-4.1".into(),
            eps,
            nc: NcRule::List(vec![256]),
            points: PointsKind::Endpoints,
            lambda: 1.0,
            init: Init::Normal,
            seed: 0,
            seeds: 1,
            widths: vec![50],
            weights: Weights::Fresh,
            train: None,
            options: NtkOptions {
                scaling: Scaling::Appendix,
                method: Method::Auto,
                top_k: 3,
                full_spectrum: false,
                chunk_bytes: None,
            },
            save_matrix: None,
            device,
            dtype: DType::F64,
            engine: EngineConfig::default(),
            progress: false,
            problem_2d: None,
        }
    }
}

/// The fitted power law ‖K_uu‖_F ∝ ε^slope with a 95% confidence interval.
#[derive(Clone, Debug, Serialize)]
pub struct SlopeFit {
    pub quantity: String,
    pub slope: f64,
    pub ci95: [f64; 2],
    pub points: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct NtkDocument {
    pub records: Vec<NtkRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fits: Vec<SlopeFit>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NtkRecord {
    pub seed: u64,
    #[serde(flatten)]
    pub report: NtkReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_final_loss: Option<f64>,
}

/// Least-squares slope of log y on log x with a Student-t 95% interval.
pub fn loglog_fit(quantity: &str, x: &[f64], y: &[f64]) -> Option<SlopeFit> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0)
        .map(|(a, b)| (a.ln(), b.ln()))
        .collect();
    let n = pts.len();
    if n < 3 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let icept = my - slope * mx;
    let sse: f64 = pts
        .iter()
        .map(|p| (p.1 - icept - slope * p.0).powi(2))
        .sum();
    let se = (sse / (n - 2) as f64 / sxx).sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 2) as f64)
        .ok()?
        .inverse_cdf(0.975);
    Some(SlopeFit {
        quantity: quantity.into(),
        slope,
        ci95: [slope - t * se, slope + t * se],
        points: n,
    })
}

/// The NTK's problem ([`Problem::for_ntk`], shared with the Python package).
fn ntk_problem(kind: Operator, coef: &str, eps: f64) -> Result<Problem> {
    let kind = match kind {
        Operator::Darcy => OperatorKind::Darcy,
        Operator::Poisson => OperatorKind::Poisson,
    };
    Ok(Problem::for_ntk(kind, coef, eps)?)
}

/// The network and residual set of one (ε, N_c, seed) of a request, before any training: what
/// [`compute`] measures.
pub fn prepare_point(a: &NtkRequest, eps: f64, nc: usize, seed: u64) -> Result<(Mlp, ResidualSet)> {
    prepare_rows(a, eps, nc, seed, 0..nc)
}

/// [`prepare_point`] with only the collocation points `rows` of the N_c (a shard of a sweep):
/// the points are laid out for all N_c, so PDE row k of the set is row `rows.start + k` of the
/// whole set; the set's loss weights are then those of `rows.len()` points, not of N_c.
pub fn prepare_rows(
    a: &NtkRequest,
    eps: f64,
    nc: usize,
    seed: u64,
    rows: std::ops::Range<usize>,
) -> Result<(Mlp, ResidualSet)> {
    let (device, dtype) = (&a.device, a.dtype);
    if let Some(cfg) = &a.problem_2d {
        anyhow::ensure!(
            rows == (0..nc),
            "a 2-D NTK is computed whole (no shards of its collocation rows)"
        );
        let problem = cfg.build(Some(eps)).context("problem")?;
        let set =
            crate::run::two_d::residual_set(&problem, a.points.name(), nc, seed, a.lambda, dtype)?;
        let mlp = network(a, seed, 2)?;
        return Ok((mlp, set));
    }
    let problem = ntk_problem(a.operator, &a.coef, eps)?;
    let x = collocation(problem.domain, parse_point_kind(a.points.name(), nc, seed)?)?;
    let x = x
        .get(rows.clone())
        .with_context(|| format!("rows {rows:?} of {nc} collocation points"))?;
    let set = ResidualSet::new(
        &problem.pde_rows(x)?,
        &problem.boundary_rows(),
        a.lambda,
        dtype,
        device,
    )?;
    Ok((network(a, seed, 1)?, set))
}

/// The request's network for seed `seed` on ℝ^`dim`: loaded (and checked to take `dim`
/// inputs) or freshly initialised.
fn network(a: &NtkRequest, seed: u64, dim: usize) -> Result<Mlp> {
    let (device, dtype) = (&a.device, a.dtype);
    let mlp = match &a.weights {
        Weights::File(w) => load_network(w, dtype, device)?,
        Weights::Checkpoint(dir) => {
            let trial = dir.join("trial-000").join("weights.safetensors");
            let path = if trial.exists() {
                trial
            } else {
                dir.join("weights.safetensors")
            };
            load_network(&path, dtype, device)
                .with_context(|| format!("--checkpoint {}", dir.display()))?
        }
        Weights::Fresh => Mlp::new(
            MlpConfig::new(a.widths.clone(), Activation::Tanh, a.init, seed).with_input_dim(dim),
            dtype,
            device,
        )?,
    };
    let got = mlp.config().input_dim;
    anyhow::ensure!(
        got == dim,
        "the weights take x in R^{got}, but the problem is {dim}-D"
    );
    Ok(mlp)
}

/// Runs the sweep: one record per (ε, N_c, seed), and the ε-power-law fits when there are at
/// least three ε.
pub fn compute(a: &NtkRequest) -> Result<NtkDocument> {
    let mut jobs: Vec<(f64, usize, u64)> = Vec::new();
    for &eps in &a.eps {
        let ncs = match &a.nc {
            // 2-D midpoints form a square grid: ⌈√C/ε⌉² points (√C/ε would be an integer but
            // for the rounding of ε itself).
            NcRule::EpsSquared(c)
                if a.problem_2d.is_some() && a.points == PointsKind::Midpoints =>
            {
                let side = (c.sqrt() / eps - 1e-9).ceil() as usize;
                vec![side * side]
            }
            NcRule::EpsSquared(c) => vec![(c / (eps * eps)).ceil() as usize],
            NcRule::List(list) => list.clone(),
        };
        for nc in ncs {
            for s in 0..a.seeds as u64 {
                jobs.push((eps, nc, a.seed + s));
            }
        }
    }
    let bar = if !a.progress {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(jobs.len() as u64);
        b.set_style(
            ProgressStyle::with_template("ntk [{bar:30}] {pos}/{len} eta {eta} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        b
    };
    let mut records = Vec::new();
    for (eps, nc, seed) in jobs {
        bar.set_message(format!("ε = {}, N_c = {nc}, seed {seed}", fmt_eps(eps)));
        let (mlp, set) = prepare_point(a, eps, nc, seed)?;
        let train_final_loss = match &a.train {
            Some(s) => {
                let o = TrainOptions {
                    progress: Progress::Quiet,
                    log_every: 1000,
                    engine: a.engine,
                    ..Default::default()
                };
                Some(Trainer::new(&mlp, &set, s, o).run(false)?.final_loss.total)
            }
            None => None,
        };
        let t = Instant::now();
        let mut evaluator = mspinn_model::evaluator::build(&a.engine, &mlp)?;
        let (mut report, dense) = analyse(&mut *evaluator, &mlp, &set, &a.options)?;
        report.eps = Some(eps);
        report.seconds = t.elapsed().as_secs_f64();
        if let (Some(d), Some(out)) = (&dense, &a.save_matrix) {
            run_dir(out)?;
            let n = d.n_pde;
            let data = d.k_uu_row_major();
            write_npy(
                &out.join(format!(
                    "k_uu_eps{}_nc{nc}_seed{seed}.npy",
                    fmt_eps(eps).replace('/', "_")
                )),
                n,
                n,
                &data,
            )?;
        }
        records.push(NtkRecord {
            seed,
            report,
            train_final_loss,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut fits = Vec::new();
    if a.eps.len() >= 3 {
        let x: Vec<f64> = records
            .iter()
            .map(|r| r.report.eps.unwrap_or(f64::NAN))
            .collect();
        let q = |name: &str, f: &dyn Fn(&NtkReport) -> f64| {
            let y: Vec<f64> = records.iter().map(|r| f(&r.report)).collect();
            loglog_fit(name, &x, &y)
        };
        fits.extend(q("k_uu_fro", &|r| r.k_uu_fro));
        fits.extend(q("k_uu_lambda1", &|r| {
            r.k_uu_eig_top.first().copied().unwrap_or(f64::NAN)
        }));
        fits.extend(q("k_uu_max_entry", &|r| r.k_uu_max_entry));
        fits.extend(q("cond_nonzero", &|r| r.cond_nonzero));
    }
    Ok(NtkDocument { records, fits })
}

/// A network from a weights file: architecture, activation and initialisation from the file's
/// metadata (every file mspinn writes has them), in the request's dtype. A file written before
/// the metadata existed is read as a tanh network, the only activation those runs offered.
fn load_network(path: &std::path::Path, dtype: DType, device: &Device) -> Result<Mlp> {
    let mlp = match mspinn_model::mlp::read_config(path)? {
        Some(_) => Mlp::load_with_config(path, device)?.to(dtype, device)?,
        None => Mlp::load(path, Activation::Tanh, dtype, device)?,
    };
    // Non-finite weights would surface as a failed eigen-decomposition: name them here.
    let theta = mlp.flat_params()?;
    let bad = theta.iter().filter(|v| !v.is_finite()).count();
    anyhow::ensure!(
        bad == 0,
        "{}: {bad} of the {} weights are NaN or infinite (a diverged run?); the NTK of such a \
         network is meaningless",
        path.display(),
        theta.len()
    );
    Ok(mlp)
}
