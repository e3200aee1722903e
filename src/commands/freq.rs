//! `mspinn freq`: the frequency principle (Fig. 1) — the spectrum of the error during training.
//!
//! Every `--every` iterations the error e = u_exact − u_NN on the collocation grid is transformed
//! with rustfft. The grid is equispaced on [a, b] with both ends; the DFT uses the first N − 1
//! points, a periodic grid of spacing (b − a)/(N − 1), so for (a, b) = (−π, π) bin k is the
//! angular frequency k exactly. Amplitudes are |DFT|·2/(N − 1) (a unit sine has amplitude 1).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mspinn_model::{Mlp, MlpConfig};
use mspinn_train::{Progress, TrainOptions, Trainer};
use rustfft::{num_complex::Complex, FftPlanner};
use serde::Serialize;

use crate::device::parse_device;
use crate::flags::{DeviceArg, QuietArg};
use crate::output::{run_dir, write_atomic, write_json};
use crate::plot::{heatmap, line_chart, Axes, Series, SeriesStyle};
use crate::run::{prepare, preset_spec, reference_on_grid, TrainSpec};

#[derive(Args, Clone)]
pub struct FreqArgs {
    /// fp-poisson (eq. 4, Fig. 1) or twoscale-darcy (eq. 27, ε = 1/32).
    #[arg(long, value_enum, default_value_t = FreqProblem::FpPoisson)]
    pub problem: FreqProblem,
    /// Adam iterations at the learning rate of --lr.
    #[arg(long, default_value_t = 10000)]
    pub iters: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Record the error spectrum every this many iterations.
    #[arg(long, default_value_t = 100)]
    pub every: u64,
    /// Seed of the network.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Output folder: freq.json, spectrum.csv, heatmap and amplitude plots.
    #[arg(long, default_value = "runs/freq")]
    pub out: PathBuf,
    #[command(flatten)]
    pub quiet: QuietArg,
}

/// The problems of the frequency experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FreqProblem {
    // Eq. (4), Fig. 1.
    FpPoisson,
    // Eq. (27), ε = 1/32.
    TwoscaleDarcy,
}

impl std::fmt::Display for FreqProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FreqProblem::FpPoisson => "fp-poisson",
            FreqProblem::TwoscaleDarcy => "twoscale-darcy",
        })
    }
}

/// One frequency experiment: Adam at one learning rate, the error spectrum every `every` steps.
#[derive(Clone, Debug)]
pub struct FreqRequest {
    pub problem: FreqProblem,
    pub iters: u64,
    pub lr: f64,
    pub every: u64,
    pub seed: u64,
    pub device: Device,
    pub out: PathBuf,
    /// No progress bar of its own.
    pub quiet: bool,
}

impl FreqArgs {
    pub fn request(&self) -> Result<FreqRequest> {
        Ok(FreqRequest {
            problem: self.problem,
            iters: self.iters,
            lr: self.lr,
            every: self.every,
            seed: self.seed,
            device: parse_device(&self.device.device)?,
            out: self.out.clone(),
            quiet: self.quiet.quiet,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FreqResult {
    pub problem: String,
    pub iterations: Vec<u64>,
    /// The tracked frequencies and their amplitude at each recorded iteration.
    pub tracked: Vec<(usize, Vec<f64>)>,
    /// First recorded iteration at which each tracked amplitude fell below 10% of its start.
    pub learned_at: Vec<(usize, Option<u64>)>,
    pub final_loss: f64,
    pub seconds: f64,
}

/// The spec of a frequency experiment: Fig. 1's network and points for eq. (4); the Fig. 4
/// Darcy setup for eq. (27).
fn freq_spec(a: &FreqRequest) -> Result<(TrainSpec, Vec<usize>)> {
    let mut spec = preset_spec("freq")?;
    let tracked = match a.problem {
        FreqProblem::FpPoisson => vec![1, 5, 15, 55],
        FreqProblem::TwoscaleDarcy => {
            let d = preset_spec("fig4-darcy")?;
            spec.problem = d.problem;
            spec.network = d.network;
            spec.points = d.points;
            spec.training.lambda = d.training.lambda;
            // u^ε = sin 2x + ε sin(x/ε) − …: the large-scale part at 2, the fast one at 1/ε = 32.
            vec![2, 32]
        }
    };
    spec.training.schedule = format!("{}@{:e}", a.iters.max(1), a.lr);
    spec.training.trials = 1;
    spec.network.seed = a.seed;
    Ok((spec, tracked))
}

/// |DFT| amplitudes of `e` over its first n − 1 points (see the module docs).
pub fn amplitudes(e: &[f64]) -> Vec<f64> {
    let m = e.len().saturating_sub(1).max(1);
    let mut buf: Vec<Complex<f64>> = e.iter().take(m).map(|&v| Complex::new(v, 0.0)).collect();
    FftPlanner::new().plan_fft_forward(m).process(&mut buf);
    buf.iter()
        .take(m / 2 + 1)
        .map(|c| c.norm() * 2.0 / m as f64)
        .collect()
}

pub fn run(a: FreqArgs) -> Result<()> {
    let r = run_freq(&a.request()?, None)?;
    for (k, at) in &r.learned_at {
        match at {
            Some(it) => println!(
                "frequency {k:>3}: error amplitude below 10% of its start at iteration {it}"
            ),
            None => println!(
                "frequency {k:>3}: not learned within {} iterations",
                a.iters
            ),
        }
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

/// Runs the experiment; `bar` (if given) shows its progress, else one of its own unless `quiet`.
pub fn run_freq(a: &FreqRequest, bar: Option<ProgressBar>) -> Result<FreqResult> {
    let (spec, tracked) = freq_spec(a)?;
    let device: &Device = &a.device;
    let prep = prepare(&spec, device)?;
    let dir = run_dir(&a.out)?;
    let (grid, exact) = reference_on_grid(&prep.problem, spec.points.n)?;
    let mlp = Mlp::new(
        MlpConfig::new(
            spec.network.widths.clone(),
            spec.network.activation,
            spec.network.init,
            a.seed,
        ),
        prep.dtype,
        device,
    )?;
    type Records = Vec<(u64, Vec<f64>)>;
    let records: Arc<Mutex<Records>> = Arc::default();
    let rec = records.clone();
    let grid_c = grid.clone();
    let exact_c = exact.clone();
    let on_log: mspinn_train::OnLog = Arc::new(move |it: u64, _seconds: f64, m: &Mlp| {
        if let Ok(u) = m.eval_points(&grid_c) {
            let e: Vec<f64> = exact_c.iter().zip(&u).map(|(x, y)| x - y).collect();
            let mut r = rec.lock().expect("records");
            if r.last().map(|l| l.0) != Some(it) {
                r.push((it, amplitudes(&e)));
            }
        }
    });
    let bar = match bar {
        Some(b) => Some(b),
        None if !a.quiet => {
            let b = ProgressBar::new(a.iters);
            b.set_style(
                ProgressStyle::with_template(
                    "freq [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            Some(b)
        }
        None => None,
    };
    let opts = TrainOptions {
        log_every: a.every.max(1),
        checkpoint_every: 0,
        run_dir: Some(dir.clone()),
        progress: bar.clone().map_or(Progress::Quiet, Progress::Bar),
        on_log: Some(on_log),
        ..Default::default()
    };
    let out = Trainer::new(&mlp, &prep.set, &prep.schedule, opts).run(false)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let records = records.lock().expect("records").clone();
    let iterations: Vec<u64> = records.iter().map(|r| r.0).collect();
    let amp_at = |k: usize| -> Vec<f64> {
        records
            .iter()
            .map(|r| r.1.get(k).copied().unwrap_or(f64::NAN))
            .collect()
    };
    let tracked_amps: Vec<(usize, Vec<f64>)> = tracked.iter().map(|&k| (k, amp_at(k))).collect();
    let learned_at = tracked_amps
        .iter()
        .map(|(k, v)| {
            let start = v.first().copied().unwrap_or(f64::NAN);
            (
                *k,
                v.iter()
                    .position(|x| *x < 0.1 * start)
                    .map(|i| iterations[i]),
            )
        })
        .collect();
    write_outputs(&dir, &records, &tracked_amps)?;
    let result = FreqResult {
        problem: prep.problem.name.clone(),
        iterations,
        tracked: tracked_amps,
        learned_at,
        final_loss: out.final_loss.total,
        seconds: out.seconds,
    };
    write_json(&dir.join("freq.json"), &result)?;
    Ok(result)
}

fn write_outputs(
    dir: &Path,
    records: &[(u64, Vec<f64>)],
    tracked: &[(usize, Vec<f64>)],
) -> Result<()> {
    let nf = records.first().map_or(0, |r| r.1.len());
    let mut csv = String::from("iteration");
    for k in 0..nf {
        csv.push_str(&format!(",f{k}"));
    }
    csv.push('\n');
    for (it, a) in records {
        csv.push_str(&it.to_string());
        for v in a {
            csv.push_str(&format!(",{v:e}"));
        }
        csv.push('\n');
    }
    write_atomic(&dir.join("spectrum.csv"), csv.as_bytes())?;
    let xs: Vec<f64> = records.iter().map(|r| r.0 as f64).collect();
    let max_f = tracked.iter().map(|t| t.0).max().unwrap_or(8);
    let shown = (max_f * 5 / 4 + 4).min(nf.saturating_sub(1));
    let ys: Vec<f64> = (0..=shown).map(|k| k as f64).collect();
    let vals: Vec<Vec<f64>> = records
        .iter()
        .map(|r| r.1.iter().take(shown + 1).copied().collect())
        .collect();
    heatmap(
        &dir.join("freq_heatmap"),
        "|DFT(u − u_NN)| during training",
        "iteration",
        "frequency",
        &xs,
        &ys,
        &vals,
        true,
    )
    .context("heatmap")?;
    let names: Vec<String> = tracked
        .iter()
        .map(|t| format!("frequency {}", t.0))
        .collect();
    let s: Vec<Series> = tracked
        .iter()
        .zip(&names)
        .map(|(t, n)| Series {
            name: n,
            x: &xs,
            y: &t.1,
            style: SeriesStyle::Line,
        })
        .collect();
    line_chart(
        &dir.join("freq_amplitudes"),
        &Axes {
            title: "error amplitude at the forcing frequencies",
            x_label: "iteration",
            y_label: "|DFT(e)|",
            log_x: false,
            log_y: true,
        },
        &s,
    )
}

#[cfg(test)]
mod tests {
    use super::amplitudes;

    #[test]
    fn unit_sines_have_unit_amplitude_at_their_frequency() {
        let n = 513;
        let x: Vec<f64> = (0..n)
            .map(|i| -std::f64::consts::PI + 2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64)
            .collect();
        let e: Vec<f64> = x
            .iter()
            .map(|x| (5.0 * x).sin() + 0.25 * (55.0 * x).sin())
            .collect();
        let a = amplitudes(&e);
        assert!((a[5] - 1.0).abs() < 1e-12);
        assert!((a[55] - 0.25).abs() < 1e-12);
        assert!(a[6] < 1e-12 && a[1] < 1e-12);
    }
}
