//! `mspinn ntk`: the NTK of the PINN residuals over sweeps of ε and N_c (Figs. 2 and 3). The
//! flags become an [`NtkRequest`], which [`compute`] carries out.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use mspinn_ntk::{Method, NtkOptions, Scaling};
use mspinn_train::Schedule;

use crate::args::fmt_eps;
use crate::args::parse_eps_list;
use crate::device::parse_device;
use crate::flags::{
    DeviceArg, EngineArgs, InitKind, Operator, PointsKind, Precision, QuietArg, WidthsArgs,
};
use crate::run::ntk::{compute, write_outputs, NcRule, NtkDocument, NtkRequest, Weights};
use mspinn_model::size_plan;

/// `--eps` unless given: the 1-D sweep of Fig. 2.
const DEFAULT_EPS: &str = "1/10:1/100:10";

#[derive(Args, Clone)]
#[command(mut_arg("widths", |a| a.help(
    "Hidden widths [default: one hidden layer of width 50, as Fig. 2]; or --depth and --width"
)))]
pub struct NtkArgs {
    /// A 2-D run file (a [problem] table with domain = [[x0, x1], [y0, y1]]): the NTK of that
    /// problem, with --eps (if given) replacing its ε and --points midpoints, uniform or halton.
    #[arg(long, conflicts_with_all = ["problem", "coef"])]
    pub config: Option<PathBuf>,
    /// darcy (−(a(x/ε)u')' = f) or poisson (−u'' = f), on (−π, π) with zero Dirichlet data.
    #[arg(long, value_enum, default_value_t = Operator::Darcy)]
    pub problem: Operator,
    /// a(y): paper-4.1 = 1/(2.1 + 2 sin 2πy), paper-4.2 = 1/(2.1 + 2 sin y), or an expression in y (period 1).
    #[arg(long, default_value = "paper-4.1")]
    pub coef: String,
    /// ε values: one (1/32), a list (1/10,1/20) or a range 1/10:1/100:10 (reciprocals evenly spaced).
    #[arg(long, default_value = DEFAULT_EPS)]
    pub eps: String,
    /// Collocation counts N_c, a list.
    #[arg(long, default_value = "256", conflicts_with = "nc_eps2")]
    pub nc: String,
    /// N_c = ⌈C·ε⁻²⌉ for each ε instead of --nc (the N_c ~ ε⁻² regime).
    #[arg(long)]
    pub nc_eps2: Option<f64>,
    /// Point layout: endpoints, midpoints or random.
    #[arg(long, value_enum, ignore_case = true, default_value_t = PointsKind::Endpoints)]
    pub points: PointsKind,
    /// Boundary weight λ.
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f64,
    /// Initialisation: normal (Fig. 2a), glorot-normal, glorot-uniform.
    #[arg(long, value_enum, ignore_case = true, default_value_t = InitKind::Normal)]
    pub init: InitKind,
    /// Seed of the (first) network.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of networks (seeds seed, seed+1, …) averaged per (ε, N_c).
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    // The hidden layers [default: one hidden layer of width 50, as Fig. 2].
    #[command(flatten)]
    pub widths: WidthsArgs,
    /// Use these weights (safetensors, `layers.{k}.weight`/`.bias`) instead of initialising.
    #[arg(long, conflicts_with_all = ["checkpoint", "train"])]
    pub weights: Option<PathBuf>,
    /// Use the final weights of a training run folder (its trial-000/weights.safetensors).
    #[arg(long, conflicts_with = "train")]
    pub checkpoint: Option<PathBuf>,
    /// Train each network first with this schedule (Fig. 2b: 10000@1e-5), on the problem at hand.
    #[arg(long)]
    pub train: Option<String>,
    /// appendix (K = J J^T D, eq. (7) weights) or unscaled (K_uu = J_u J_u^T, section 4.1).
    #[arg(long, value_enum, default_value_t = ScalingKind::Appendix)]
    pub scaling: ScalingKind,
    /// auto (dense if N_c ≤ N_p, else Gram), dense or gram.
    #[arg(long, value_enum, default_value_t = MethodKind::Auto)]
    pub method: MethodKind,
    /// How many of the largest eigenvalues to report.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// Keep the full spectra (Fig. 3) in the output and plot them.
    #[arg(long)]
    pub full_spectrum: bool,
    /// Write K_uu as .npy for every dense record (in --out).
    #[arg(long)]
    pub save_matrix: bool,
    /// Memory for one chunk of Jacobian rows, MiB [default: 256 on the CPU; on a GPU half of the
    /// free device memory]. A chunk that runs out of device memory is retried at half the rows.
    #[arg(long)]
    pub chunk_mb: Option<usize>,
    /// Print one JSON document to stdout (records and the fitted slope) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Output folder: records.csv, ntk.json, plots (and .npy with --save-matrix).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// f64 (default, for analysis) or f32.
    #[arg(long, value_enum, default_value_t = Precision::F64)]
    pub dtype: Precision,
    #[command(flatten)]
    pub quiet: QuietArg,
}

/// The NTK convention (see `--scaling`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScalingKind {
    Appendix,
    Unscaled,
}

/// How the NTK is assembled (see `--method`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodKind {
    Auto,
    Dense,
    Gram,
}

impl NtkArgs {
    /// The sweep these flags describe.
    pub fn request(&self) -> Result<NtkRequest> {
        let device = parse_device(&self.device.device)?;
        let eps = parse_eps_list(&self.eps).context("--eps")?;
        let widths = self.widths.resolve(&[50])?;
        anyhow::ensure!(self.seeds >= 1, "--seeds must be at least 1");
        anyhow::ensure!(self.chunk_mb != Some(0), "--chunk-mb must be at least 1");
        let train: Option<Schedule> = self.train.as_deref().map(str::parse).transpose()?;
        // Every N of the sweep as a count (no panic on 1e20 or inf), and the largest checked
        // against the memory before anything is allocated.
        let (nc, largest) = match self.nc_eps2 {
            Some(c) => {
                anyhow::ensure!(
                    c.is_finite() && c > 0.0,
                    "--nc-eps2 {c}: must be finite and > 0"
                );
                let mut largest = 0;
                for &e in &eps {
                    let n = size_plan::count_from_f64("--nc-eps2", (c / (e * e)).ceil())?;
                    largest = largest.max(n);
                }
                (NcRule::EpsSquared(c), largest)
            }
            None => {
                let list: Vec<usize> = self
                    .nc
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| size_plan::parse_count("--nc", t))
                    .collect::<std::result::Result<_, _>>()?;
                anyhow::ensure!(!list.is_empty(), "--nc: empty list {:?}", self.nc);
                anyhow::ensure!(!list.contains(&0), "--nc: counts must be at least 1");
                let largest = list.iter().copied().max().unwrap_or(0) as u64;
                (NcRule::List(list), largest)
            }
        };
        {
            let option = if self.nc_eps2.is_some() {
                "--nc-eps2"
            } else {
                "--nc"
            };
            let method = match self.method {
                MethodKind::Auto => size_plan::NtkMethod::Auto,
                MethodKind::Dense => size_plan::NtkMethod::Dense,
                MethodKind::Gram => size_plan::NtkMethod::Gram,
            };
            let w: Vec<u128> = widths.iter().map(|&x| x as u128).collect();
            let chunk = self.chunk_mb.map_or(256u128 << 20, |mb| (mb as u128) << 20);
            // N_c collocation rows plus the two boundary rows.
            let needs = size_plan::ntk_bytes(largest as u128 + 2, &w, method, chunk);
            size_plan::check_fits(
                &format!("{option} (largest N_c {largest}, {:?} NTK)", self.method),
                needs,
                size_plan::available_memory(),
                &format!("lower {option}, or the widths"),
            )?;
        }
        let weights = match (&self.weights, &self.checkpoint) {
            (Some(w), _) => Weights::File(w.clone()),
            (None, Some(dir)) => Weights::Checkpoint(dir.clone()),
            (None, None) => Weights::Fresh,
        };
        Ok(NtkRequest {
            operator: self.problem,
            coef: self.coef.clone(),
            eps,
            nc,
            points: self.points,
            lambda: self.lambda,
            init: self.init.into(),
            seed: self.seed,
            seeds: self.seeds,
            widths,
            weights,
            train,
            options: NtkOptions {
                scaling: match self.scaling {
                    ScalingKind::Appendix => Scaling::Appendix,
                    ScalingKind::Unscaled => Scaling::Unscaled,
                },
                method: match self.method {
                    MethodKind::Auto => Method::Auto,
                    MethodKind::Dense => Method::Dense,
                    MethodKind::Gram => Method::Gram,
                },
                top_k: self.top_k.max(1),
                full_spectrum: self.full_spectrum,
                chunk_bytes: self.chunk_mb.map(|mb| mb.saturating_mul(1 << 20)),
            },
            save_matrix: self.out.clone().filter(|_| self.save_matrix),
            device,
            dtype: self.dtype.dtype(),
            engine: self.engine.config(),
            progress: !(self.quiet.quiet || self.json),
            problem_2d: None,
        })
    }
}

pub fn run(a: NtkArgs) -> Result<()> {
    let mut req = a.request()?;
    if let Some(path) = &a.config {
        anyhow::ensure!(
            crate::run::two_d::is_2d_run_file(path),
            "--config {}: ntk takes a 2-D run file (a [problem] table with \
             domain = [[x0, x1], [y0, y1]]); 1-D problems use --problem and --coef",
            path.display()
        );
        let spec = crate::run::two_d::TrainSpec2d::from_file(path)?;
        // --eps replaces the file's ε only when given (its default is the 1-D sweep).
        if a.eps == DEFAULT_EPS {
            let p = spec.problem.build(None).context("problem")?;
            req.eps = vec![p.eps];
        }
        req.problem_2d = Some(spec.problem);
    }
    let doc = compute(&req)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_table(&doc);
    }
    if let Some(out) = &a.out {
        write_outputs(out, &doc)?;
        if !a.json {
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

fn print_table(doc: &NtkDocument) {
    println!(
        "{:>8} {:>8} {:>6} {:>5} {:>11} {:>11} {:>11} {:>11} {:>11} {:>10} {:>6} {:>8}",
        "eps",
        "nc",
        "np",
        "seed",
        "‖K_uu‖_F",
        "λ1(K_uu)",
        "max K_uu",
        "‖K_bb‖_F",
        "‖K‖_F",
        "cond(K)",
        "method",
        "seconds"
    );
    for r in &doc.records {
        let p = &r.report;
        println!(
            "{:>8} {:>8} {:>6} {:>5} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>10.3e} {:>6} {:>8.3}",
            p.eps.map(fmt_eps).unwrap_or_default(),
            p.nc,
            p.np,
            r.seed,
            p.k_uu_fro,
            p.k_uu_eig_top.first().copied().unwrap_or(f64::NAN),
            p.k_uu_max_entry,
            p.k_bb_fro,
            p.k_fro,
            p.cond_nonzero,
            p.method.name(),
            p.seconds
        );
    }
    if let Some(s) = doc.records.first() {
        println!("scaling: {}", s.report.scaling.name());
    }
    for f in &doc.fits {
        println!(
            "fit: {} ∝ ε^{:.3}  (95% CI [{:.3}, {:.3}], {} points)",
            f.quantity, f.slope, f.ci95[0], f.ci95[1], f.points
        );
    }
}
