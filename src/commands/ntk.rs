//! `mspinn ntk`: the NTK of the PINN residuals over sweeps of ε and N_c (Figs. 2 and 3).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mspinn_model::{Activation, EngineConfig, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_ntk::{analyse, Method, NtkOptions, NtkReport, Scaling};
use mspinn_problem::{collocation, parse_point_kind, Coefficient, OperatorKind, Problem};
use mspinn_train::{Progress, Schedule, TrainOptions, Trainer};
use serde::Serialize;

use crate::args::{hidden_widths, parse_dtype, parse_eps_list, parse_usize_list};
use crate::commands::solve::fmt_eps;
use crate::device::parse_device;
use crate::output::{run_dir, write_atomic, write_json, write_npy};
use crate::plot::{line_chart, Axes, Series, SeriesStyle};

#[derive(Args, Clone)]
pub struct NtkArgs {
    /// darcy (−(a(x/ε)u')' = f) or poisson (−u'' = f), on (−π, π) with zero Dirichlet data.
    #[arg(long, default_value = "darcy")]
    pub problem: String,
    /// a(y): paper-4.1 = 1/(2.1 + 2 sin 2πy), paper-4.2 = 1/(2.1 + 2 sin y), or an expression in y (period 1).
    #[arg(long, default_value = "paper-4.1")]
    pub coef: String,
    /// ε values: one (1/32), a list (1/10,1/20) or a range 1/10:1/100:10 (reciprocals evenly spaced).
    #[arg(long, default_value = "1/10:1/100:10")]
    pub eps: String,
    /// Collocation counts N_c, a list.
    #[arg(long, default_value = "256", conflicts_with = "nc_eps2")]
    pub nc: String,
    /// N_c = ⌈C·ε⁻²⌉ for each ε instead of --nc (the N_c ~ ε⁻² regime).
    #[arg(long)]
    pub nc_eps2: Option<f64>,
    /// Point layout: endpoints, midpoints or random.
    #[arg(long, default_value = "endpoints")]
    pub points: String,
    /// Boundary weight λ.
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f64,
    /// Initialisation: normal (Fig. 2a), glorot-normal, glorot-uniform.
    #[arg(long, default_value = "normal")]
    pub init: String,
    /// Seed of the (first) network.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of networks (seeds seed, seed+1, …) averaged per (ε, N_c).
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Hidden widths (default: one hidden layer of width 50, as Fig. 2).
    #[arg(long)]
    pub widths: Option<String>,
    #[arg(long)]
    pub depth: Option<usize>,
    #[arg(long)]
    pub width: Option<usize>,
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
    #[arg(long, default_value = "appendix")]
    pub scaling: String,
    /// auto (dense if N_c ≤ N_p, else Gram), dense or gram.
    #[arg(long, default_value = "auto")]
    pub method: String,
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
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f64 (default, for analysis) or f32.
    #[arg(long, default_value = "f64")]
    pub dtype: String,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
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

fn ntk_problem(kind: &str, coef: &str, eps: f64) -> Result<Problem> {
    let mut p = Problem::preset("ntk-4.1", Some(eps))?;
    match kind {
        "darcy" => {
            p.coef = Some(Coefficient::from_name(coef)?);
            p.name = format!("darcy, a = {coef}");
        }
        "poisson" => {
            p.kind = OperatorKind::Poisson;
            p.coef = None;
            p.name = "poisson".into();
        }
        other => bail!("--problem {other:?}: expected darcy or poisson"),
    }
    p.validate()?;
    Ok(p)
}

pub fn run(a: NtkArgs) -> Result<()> {
    let doc = compute(&a)?;
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

/// Runs the sweep described by `a`.
pub fn compute(a: &NtkArgs) -> Result<NtkDocument> {
    let device: Device = parse_device(&a.device)?;
    let dtype = parse_dtype(&a.dtype)?;
    let eps_list = parse_eps_list(&a.eps).context("--eps")?;
    let widths = hidden_widths(a.widths.as_deref(), a.depth, a.width, &[50])?;
    let init = Init::parse(&a.init).with_context(|| {
        format!(
            "--init {:?}: expected normal, glorot-normal or glorot-uniform",
            a.init
        )
    })?;
    let scaling = Scaling::parse(&a.scaling)
        .with_context(|| format!("--scaling {:?}: expected appendix or unscaled", a.scaling))?;
    let method = Method::parse(&a.method)
        .with_context(|| format!("--method {:?}: expected auto, dense or gram", a.method))?;
    anyhow::ensure!(a.seeds >= 1, "--seeds must be at least 1");
    anyhow::ensure!(a.chunk_mb != Some(0), "--chunk-mb must be at least 1");
    let schedule: Option<Schedule> = a.train.as_deref().map(str::parse).transpose()?;
    let opts = NtkOptions {
        scaling,
        method,
        top_k: a.top_k.max(1),
        full_spectrum: a.full_spectrum,
        chunk_bytes: a.chunk_mb.map(|mb| mb.saturating_mul(1 << 20)),
    };
    let mut jobs: Vec<(f64, usize, u64)> = Vec::new();
    for &eps in &eps_list {
        let ncs = match a.nc_eps2 {
            Some(c) => {
                anyhow::ensure!(c > 0.0, "--nc-eps2 must be > 0");
                vec![(c / (eps * eps)).ceil() as usize]
            }
            None => parse_usize_list(&a.nc).context("--nc")?,
        };
        for nc in ncs {
            for s in 0..a.seeds as u64 {
                jobs.push((eps, nc, a.seed + s));
            }
        }
    }
    let bar = if a.quiet || a.json {
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
        let problem = ntk_problem(&a.problem, &a.coef, eps)?;
        let x = collocation(problem.domain, parse_point_kind(&a.points, nc, seed)?)?;
        let set = ResidualSet::new(
            &problem.pde_rows(&x)?,
            &problem.boundary_rows(),
            a.lambda,
            dtype,
            &device,
        )?;
        let mlp = if let Some(w) = &a.weights {
            Mlp::load(w, Activation::Tanh, dtype, &device)?
        } else if let Some(dir) = &a.checkpoint {
            Mlp::load(
                &dir.join("trial-000").join("weights.safetensors"),
                Activation::Tanh,
                dtype,
                &device,
            )
            .or_else(|_| {
                Mlp::load(
                    &dir.join("weights.safetensors"),
                    Activation::Tanh,
                    dtype,
                    &device,
                )
            })
            .with_context(|| format!("--checkpoint {}: no weights.safetensors", dir.display()))?
        } else {
            Mlp::new(
                MlpConfig::new(widths.clone(), Activation::Tanh, init, seed),
                dtype,
                &device,
            )?
        };
        let train_final_loss = match &schedule {
            Some(s) => {
                let o = TrainOptions {
                    progress: Progress::Quiet,
                    log_every: 1000,
                    ..Default::default()
                };
                Some(Trainer::new(&mlp, &set, s, o).run(false)?.final_loss.total)
            }
            None => None,
        };
        let t = Instant::now();
        let mut ev = mspinn_model::evaluator::build(&EngineConfig::default(), &mlp)?;
        let (mut report, dense) = analyse(&mut *ev, &mlp, &set, &opts)?;
        report.eps = Some(eps);
        report.seconds = t.elapsed().as_secs_f64();
        if let (true, Some(d), Some(out)) = (a.save_matrix, &dense, &a.out) {
            run_dir(out)?;
            let k = d.k_uu();
            let n = k.nrows();
            let data: Vec<f64> = (0..n * n).map(|i| k[(i / n, i % n)]).collect();
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
    if eps_list.len() >= 3 {
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

/// records.csv, ntk.json and the Fig. 2 / Fig. 3 style plots.
pub fn write_outputs(out: &std::path::Path, doc: &NtkDocument) -> Result<()> {
    let dir = run_dir(out)?;
    write_json(&dir.join("ntk.json"), doc)?;
    let mut csv = String::from(
        "eps,nc,np,seed,k_uu_fro,k_bb_fro,k_fro,k_uu_lambda1,k_uu_lambda2,k_uu_lambda3,k_uu_trace,k_uu_max_entry,k_uu_rank,k_uu_cond_nonzero,k_lambda1,cond_nonzero,scaling,method,dtype,seconds\n",
    );
    for r in &doc.records {
        let p = &r.report;
        let l = |v: &Vec<f64>, i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        csv.push_str(&format!(
            "{:e},{},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{},{:e},{:e},{:e},{},{},{},{:.4}\n",
            p.eps.unwrap_or(f64::NAN),
            p.nc,
            p.np,
            r.seed,
            p.k_uu_fro,
            p.k_bb_fro,
            p.k_fro,
            l(&p.k_uu_eig_top, 0),
            l(&p.k_uu_eig_top, 1),
            l(&p.k_uu_eig_top, 2),
            p.k_uu_trace,
            p.k_uu_max_entry,
            p.k_uu_rank,
            p.k_uu_cond_nonzero,
            l(&p.k_eig_top, 0),
            p.cond_nonzero,
            p.scaling.name(),
            p.method.name(),
            p.dtype,
            p.seconds
        ));
    }
    write_atomic(&dir.join("records.csv"), csv.as_bytes())?;
    plot_scaling(&dir.join("ntk_scaling"), doc)?;
    plot_spectra(&dir.join("ntk_spectrum"), doc)?;
    Ok(())
}

/// Mean over seeds of a quantity, per distinct ε (sorted ascending).
pub fn per_eps_mean(doc: &NtkDocument, f: &dyn Fn(&NtkReport) -> f64) -> (Vec<f64>, Vec<f64>) {
    let mut eps: Vec<f64> = doc.records.iter().filter_map(|r| r.report.eps).collect();
    eps.sort_by(f64::total_cmp);
    eps.dedup();
    let ys = eps
        .iter()
        .map(|e| {
            let v: Vec<f64> = doc
                .records
                .iter()
                .filter(|r| r.report.eps == Some(*e))
                .map(|r| f(&r.report))
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        })
        .collect();
    (eps, ys)
}

/// Fig. 2 style: ‖K_uu‖_F and λ1..λ3 against ε, log–log, with an ε⁻² guide.
pub fn plot_scaling(stem: &std::path::Path, doc: &NtkDocument) -> Result<()> {
    let (eps, fro) = per_eps_mean(doc, &|r| r.k_uu_fro);
    if eps.len() < 2 {
        return Ok(());
    }
    let lam: Vec<(Vec<f64>, Vec<f64>)> = (0..3)
        .map(|i| {
            per_eps_mean(doc, &move |r| {
                r.k_uu_eig_top.get(i).copied().unwrap_or(f64::NAN)
            })
        })
        .collect();
    // ε⁻² through the first point of the norm.
    let guide: Vec<f64> = eps.iter().map(|e| fro[0] * (eps[0] / e).powi(2)).collect();
    let scaling = doc
        .records
        .first()
        .map_or("appendix", |r| r.report.scaling.name());
    let title = format!("NTK scaling ({scaling} convention)");
    let s = vec![
        Series {
            name: "‖K_uu‖_F",
            x: &eps,
            y: &fro,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "λ1",
            x: &lam[0].0,
            y: &lam[0].1,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "λ2",
            x: &lam[1].0,
            y: &lam[1].1,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "λ3",
            x: &lam[2].0,
            y: &lam[2].1,
            style: SeriesStyle::LinePoints,
        },
        Series {
            name: "∝ ε⁻²",
            x: &eps,
            y: &guide,
            style: SeriesStyle::Dashed,
        },
    ];
    line_chart(
        stem,
        &Axes {
            title: &title,
            x_label: "ε",
            y_label: "K_uu",
            log_x: true,
            log_y: true,
        },
        &s,
    )
}

/// Fig. 3 style: each record's sorted spectrum of K, log scale (only with --full-spectrum).
pub fn plot_spectra(stem: &std::path::Path, doc: &NtkDocument) -> Result<()> {
    let specs: Vec<(String, Vec<f64>, Vec<f64>)> = doc
        .records
        .iter()
        .filter_map(|r| {
            let s = r.report.k_spectrum.as_ref()?;
            let x: Vec<f64> = (1..=s.len()).map(|i| i as f64).collect();
            let name = format!(
                "ε = {}, N_c = {}, seed {}",
                r.report.eps.map(fmt_eps).unwrap_or_default(),
                r.report.nc,
                r.seed
            );
            Some((name, x, s.clone()))
        })
        .take(8)
        .collect();
    if specs.is_empty() {
        return Ok(());
    }
    let s: Vec<Series> = specs
        .iter()
        .map(|(n, x, y)| Series {
            name: n,
            x,
            y,
            style: SeriesStyle::Points,
        })
        .collect();
    line_chart(
        stem,
        &Axes {
            title: "NTK spectrum (eigenvalues of K, descending)",
            x_label: "index",
            y_label: "eigenvalue",
            log_x: false,
            log_y: true,
        },
        &s,
    )
}
