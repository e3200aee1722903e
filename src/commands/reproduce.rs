//! `mspinn reproduce`: every figure and number of the paper's sections 2 and 4 in one report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use candle_core::Device;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mspinn_model::Init;
use mspinn_train::{LbfgsOptions, Schedule, TrainOptions};

use crate::args::parse_eps_list;
use crate::commands::freq::{run_freq, FreqProblem, FreqRequest, FreqResult};
use crate::device::{device_name, parse_device};
use crate::flags::DeviceArg;
use crate::output::{build_info, run_dir, write_atomic};
use crate::run::ntk::{compute, write_outputs, NtkDocument, NtkRequest};
use crate::run::{preset_spec, run_trials, TrainResult};

const ALL: [&str; 5] = ["fig1", "fig2a", "fig2b", "fig3", "fig4"];

#[derive(Args, Clone)]
pub struct ReproduceArgs {
    /// Shrink iterations, seeds and trials so the whole report takes a few minutes on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated subset of fig1, fig2a, fig2b, fig3, fig4.
    #[arg(long)]
    pub only: Option<String>,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Report folder (report.md, plots, raw data per figure).
    #[arg(long, default_value = "runs/reproduce")]
    pub out: PathBuf,
}

/// The paper's numbers for Fig. 4 (section 4.2): max |u − E u_NN| and mean variance.
const PAPER_FIG4: [(&str, f64, f64); 3] = [
    ("regression", 2.65e-3, 3e-7),
    ("poisson", 7.20e-2, 1.12e-1),
    ("darcy", 4.31e-1, 2.83e-1),
];

struct Section {
    title: String,
    body: String,
    seconds: f64,
}

/// The NTK figures' settings (Fig. 2a, 2b, 3), on `device` like the rest of the report.
fn ntk_request(
    eps: &str,
    seeds: usize,
    init: Init,
    train: Option<&str>,
    full: bool,
    device: &Device,
) -> Result<NtkRequest> {
    let mut r = NtkRequest::fig2(parse_eps_list(eps)?, device.clone());
    r.seeds = seeds;
    r.init = init;
    r.train = train.map(str::parse).transpose()?;
    r.options.full_spectrum = full;
    Ok(r)
}

fn fit_line(doc: &NtkDocument, q: &str) -> String {
    doc.fits
        .iter()
        .find(|f| f.quantity == q)
        .map(|f| {
            format!(
                "{:.3} (95% CI [{:.3}, {:.3}], {} points)",
                f.slope, f.ci95[0], f.ci95[1], f.points
            )
        })
        .unwrap_or_else(|| "n/a".into())
}

fn fig2(dir: &Path, name: &str, a: &NtkRequest, paper: &str) -> Result<Section> {
    let t = Instant::now();
    let doc = compute(a)?;
    write_outputs(&dir.join(name), &doc)?;
    let mut b = String::new();
    writeln!(b, "![{name}]({name}/ntk_scaling.png)\n")?;
    writeln!(
        b,
        "| quantity | fitted slope vs ε (ours) | paper |\n|---|---|---|"
    )?;
    writeln!(b, "| ‖K_uu‖_F | {} | {paper} |", fit_line(&doc, "k_uu_fro"))?;
    writeln!(
        b,
        "| λ1(K_uu) | {} | ∝ ε⁻² (Fig. {}) |",
        fit_line(&doc, "k_uu_lambda1"),
        &name[3..]
    )?;
    writeln!(
        b,
        "| max entry of K_uu | {} | entries ∝ 1/(N_c ε²) (Thm 3.2) |",
        fit_line(&doc, "k_uu_max_entry")
    )?;
    writeln!(b, "\nSettings: one hidden layer d = 50, tanh, N_c = 256 equispaced points on (−π, π), a = paper-4.1, λ = 1, \
        init {}, {} seed(s) per ε{}, appendix scaling (K_uu = J_u J_uᵀ/N_c). Raw data: `{name}/records.csv`.",
        a.init.name(), a.seeds, a.train.as_ref().map(|s| format!(", trained with Adam {s} first")).unwrap_or_default())?;
    Ok(Section {
        title: format!("Fig. {}", &name[3..]),
        body: b,
        seconds: t.elapsed().as_secs_f64(),
    })
}

fn fig3(dir: &Path, quick: bool, device: &Device) -> Result<Section> {
    let t = Instant::now();
    let train = if quick { "300@1e-5" } else { "10000@1e-5" };
    let init = compute(&ntk_request(
        "1/80",
        1,
        Init::GlorotNormal,
        None,
        true,
        device,
    )?)?;
    let trained = compute(&ntk_request(
        "1/80",
        1,
        Init::GlorotNormal,
        Some(train),
        true,
        device,
    )?)?;
    write_outputs(&dir.join("fig3-init"), &init)?;
    write_outputs(&dir.join("fig3-trained"), &trained)?;
    let mut b = String::new();
    writeln!(
        b,
        "| | at initialisation | after Adam {train} |\n|---|---|---|"
    )?;
    for (label, f) in [
        (
            "λ_max(K)",
            &(|d: &NtkDocument| d.records[0].report.k_eig_top[0]) as &dyn Fn(&NtkDocument) -> f64,
        ),
        ("λ2(K)", &|d: &NtkDocument| {
            d.records[0]
                .report
                .k_eig_top
                .get(1)
                .copied()
                .unwrap_or(f64::NAN)
        }),
        ("λ_max/λ_min (nonzero)", &|d: &NtkDocument| {
            d.records[0].report.cond_nonzero
        }),
        ("‖K_uu‖_F", &|d: &NtkDocument| {
            d.records[0].report.k_uu_fro
        }),
    ] {
        writeln!(b, "| {label} | {:.3e} | {:.3e} |", f(&init), f(&trained))?;
    }
    writeln!(
        b,
        "\n![init](fig3-init/ntk_spectrum.png)\n![trained](fig3-trained/ntk_spectrum.png)\n"
    )?;
    writeln!(b, "Paper: a handful of large eigenvalues at initialisation, one dominant one after training, \
        λ_max/λ_min very large in both. ε = 1/80, Glorot-normal init, d = 50, N_c = 256.")?;
    Ok(Section {
        title: "Fig. 3".into(),
        body: b,
        seconds: t.elapsed().as_secs_f64(),
    })
}

fn fig1(dir: &Path, quick: bool, device: &Device, bar: ProgressBar) -> Result<Section> {
    let t = Instant::now();
    let mut b = String::new();
    for (problem, its) in [
        (FreqProblem::FpPoisson, if quick { 1500 } else { 10000 }),
        (FreqProblem::TwoscaleDarcy, if quick { 1000 } else { 10000 }),
    ] {
        let a = FreqRequest {
            problem,
            iters: its,
            lr: 1e-3,
            every: (its / 100).max(1),
            seed: 0,
            device: device.clone(),
            out: dir.join(format!("fig1-{problem}")),
            quiet: true,
        };
        bar.set_length(its);
        bar.set_position(0);
        let r: FreqResult = run_freq(&a, Some(bar.clone()))?;
        writeln!(b, "**{problem}** ({its} Adam steps at 1e-3):\n")?;
        writeln!(b, "![heatmap](fig1-{problem}/freq_heatmap.png)\n![amplitudes](fig1-{problem}/freq_amplitudes.png)\n")?;
        writeln!(b, "| frequency | error amplitude at start | at end | iteration where it fell below 10% |\n|---|---|---|---|")?;
        for ((k, amps), (_, at)) in r.tracked.iter().zip(&r.learned_at) {
            writeln!(
                b,
                "| {k} | {:.3e} | {:.3e} | {} |",
                amps.first().copied().unwrap_or(f64::NAN),
                amps.last().copied().unwrap_or(f64::NAN),
                at.map(|i| i.to_string())
                    .unwrap_or_else(|| "not learned".into())
            )?;
        }
        writeln!(b)?;
    }
    writeln!(b, "Paper (Fig. 1): the low frequencies of the error are removed first (frequency principle). \
        For the two-scale Darcy problem, frequency 2 is the large-scale part of u^ε, 32 = 1/ε the fast one.")?;
    Ok(Section {
        title: "Fig. 1".into(),
        body: b,
        seconds: t.elapsed().as_secs_f64(),
    })
}

fn fig4(dir: &Path, quick: bool, device: &Device, multi: &MultiProgress) -> Result<Section> {
    let t = Instant::now();
    let mut b = String::new();
    writeln!(b, "| method | max \\|u − E u_NN\\| (ours) | paper | mean variance (ours) | paper | median rel. L2 | trials | schedule | seconds |")?;
    writeln!(b, "|---|---|---|---|---|---|---|---|---|")?;
    let mut results: Vec<(String, TrainResult)> = Vec::new();
    for (method, paper_err, paper_var) in PAPER_FIG4 {
        let mut spec = preset_spec(&format!("fig4-{method}"))?;
        if quick {
            let s: Schedule = spec.training.schedule.parse()?;
            spec.training.schedule = s.scaled(1.0 / 200.0, 60).to_string();
            spec.training.trials = 2;
        }
        spec.training.log_every = 50;
        spec.training.checkpoint_every = 10000;
        let opts = TrainOptions {
            lbfgs: LbfgsOptions::default(),
            ..Default::default()
        };
        // reproduce owns its sub-folders: a second reproduce replaces them.
        let r = run_trials(
            &spec,
            device,
            &dir.join(format!("fig4-{method}")),
            crate::output::FolderMode::Overwrite,
            None,
            opts,
            Some(multi),
        )?;
        let mut l2 = r.summary.rel_l2.clone();
        l2.sort_by(f64::total_cmp);
        writeln!(b, "| {method} | {:.3e} | {paper_err:.2e} | {:.3e} | {paper_var:.2e} | {:.3e} | {} | `{}` | {:.0} |",
            r.summary.max_error_mean_network, r.summary.mean_variance, l2[l2.len() / 2], r.summary.trials, r.schedule, r.seconds)?;
        results.push((method.into(), r));
    }
    writeln!(b)?;
    for (m, _) in &results {
        writeln!(
            b,
            "![{m}](fig4-{m}/solution.png)\n![{m} error](fig4-{m}/error.png)\n"
        )?;
    }
    writeln!(b, "Settings: ε = 1/32, 4×40 tanh, Glorot-normal, f64; regression on 403 equispaced points, PINNs on 1024, \
        λ = 2 (the boundary term ½(u(−π)² + u(π)²) of section 4.2); metrics on 1000 equispaced points; L-BFGS with More–Thuente \
        line search, memory 50.")?;
    Ok(Section {
        title: "Fig. 4 and the error figures of section 4.2".into(),
        body: b,
        seconds: t.elapsed().as_secs_f64(),
    })
}

pub fn run(a: ReproduceArgs) -> Result<()> {
    let start = Instant::now();
    let device = parse_device(&a.device.device)?;
    let only: Vec<String> = match &a.only {
        Some(s) => s
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        None => ALL.iter().map(|s| s.to_string()).collect(),
    };
    for o in &only {
        if !ALL.contains(&o.as_str()) {
            bail!("--only {o:?}: expected some of {}", ALL.join(","));
        }
    }
    let dir = run_dir(&a.out)?;
    let multi = MultiProgress::new();
    let overall = multi.add(ProgressBar::new(only.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("reproduce [{bar:20}] {pos}/{len} {msg} ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    let step = multi.add(ProgressBar::new(1));
    step.set_style(
        ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len} eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let (seeds, eps_b) = if a.quick {
        (2, "1/10:1/100:4")
    } else {
        (10, "1/10:1/100:10")
    };
    let train_b = if a.quick { "300@1e-5" } else { "10000@1e-5" };
    let mut sections = Vec::new();
    for name in &only {
        overall.set_message(name.clone());
        step.set_message(name.clone());
        let s = match name.as_str() {
            "fig1" => fig1(&dir, a.quick, &device, step.clone())?,
            "fig2a" => fig2(
                &dir,
                "fig2a",
                &ntk_request("1/10:1/100:10", seeds, Init::Normal, None, false, &device)?,
                "∝ ε⁻² (Fig. 2a, N(0,1) init)",
            )?,
            "fig2b" => fig2(
                &dir,
                "fig2b",
                &ntk_request(eps_b, 1, Init::GlorotNormal, Some(train_b), false, &device)?,
                "∝ ε⁻² (Fig. 2b, after Adam)",
            )?,
            "fig3" => fig3(&dir, a.quick, &device)?,
            "fig4" => fig4(&dir, a.quick, &device, &multi)?,
            _ => unreachable!("checked above"),
        };
        sections.push(s);
        overall.inc(1);
    }
    overall.finish_and_clear();
    step.finish_and_clear();
    let b = build_info();
    let mut md = String::new();
    writeln!(
        md,
        "# mspinn reproduction of Carney, Gangal & Kim (sections 2 and 4)\n"
    )?;
    writeln!(md, "Mode: **{}**. Device: {}. mspinn {} ({} build, cuda feature: {}). {} CPU threads. Total wall time {:.0} s.\n",
        if a.quick { "quick (shortened schedules, fewer seeds and trials: numbers are indicative only)" } else { "full (paper settings)" },
        device_name(&device), b.mspinn, b.profile, b.cuda_feature,
        std::thread::available_parallelism().map_or(1, |n| n.get()), start.elapsed().as_secs_f64())?;
    for s in &sections {
        writeln!(
            md,
            "## {}\n\n{}\nWall time: {:.1} s.\n",
            s.title, s.body, s.seconds
        )?;
    }
    write_atomic(&dir.join("report.md"), md.as_bytes())?;
    println!(
        "wrote {} ({:.0} s)",
        dir.join("report.md").display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
