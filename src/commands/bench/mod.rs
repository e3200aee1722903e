//! `mspinn bench`: how fast the engine is on this machine, in milliseconds, GFLOP/s and percent of
//! a matmul peak measured in the same run.
//!
//! Every figure is for the Fig. 4 Darcy PINN (4×40 tanh, Glorot normal, paper-4.2 coefficient,
//! ε = 1/32, λ = 2, equispaced points), built through the same preset and `prepare` as
//! `mspinn train`, so the bench times whatever `Mlp::loss_and_grad` and [`Adam::step`] do today
//! (a faster engine behind them shows up here without changes). Measurements:
//!
//! - `adam`: one Adam step, `loss_and_grad` + `Adam::step`, exactly the trainer's iteration;
//! - `lbfgs`: one L-BFGS objective evaluation (`set_flat_params` + `loss_and_grad` + `flat_grad`);
//! - `dense`: K_uu assembly, per-sample Jacobian J_u and J_u J_uᵀ (no eigenvalues);
//! - `gram`: the parameter-space Gram G = J^T D J over chunks (`analysis::param_gram`);
//! - `fig2a`: one point of the Fig. 2a sweep, `analyse` on the 1×50 network, N(0,1) init,
//!   paper-4.1 coefficient, ε = 1/100, N_c = 256 (assembly and both spectra);
//! - `gemm`: an n×n matmul through candle and through faer: the peak the other rows are a
//!   percentage of (the larger of the two, per device and dtype).
//!
//! Timing: warm-up calls (at least one, ~0.2 s), then `reps` repetitions of `inner` calls each
//! (inner chosen so a repetition lasts ≥ 20 ms, which keeps timer and scheduler noise small);
//! the per-call median and minimum over repetitions are reported. Medians are the robust
//! statistic on a shared 2-core machine; the minimum is the least disturbed run. Every timed call
//! ends with a device synchronisation (a no-op on the CPU). The FLOP model is in [`flops`].

mod flops;
mod measure;
mod report;
mod timing;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{dtype_name, parse_dtype, parse_usize_list};
use crate::device::parse_device;
use crate::flags::QuietArg;
use crate::output::{build_info, run_dir, write_atomic, write_json};
use measure::{measure, rss_check, Job};
use report::{compare, cpu_model, csv, table, BenchDocument, BenchRecord};
use timing::Plan;

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Devices, comma separated (cpu, cuda, cuda:N). With two, a second table puts them side by
    /// side with the time ratio and the crossover N_c; a GPU alone is measured beside the CPU
    /// (`--device cuda` is `--device cpu,cuda`) unless --alone.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Measure only the devices named (a GPU without the CPU beside it: for sizes the CPU
    /// would take minutes over, like the Gram at N_c = 10⁶).
    #[arg(long)]
    pub alone: bool,
    /// The engine a GPU is measured with: `gpu` (the GPU engine: cuBLAS, fused kernels, Adam on
    /// the device) or `candle` (candle op by op). The CPU always runs the CPU engine.
    #[arg(long, value_enum, default_value = "gpu")]
    pub gpu_engine: GpuEngine,
    /// dtypes, comma separated: f32, f64.
    #[arg(long, default_value = "f32,f64")]
    pub dtype: String,
    /// N_c of the Adam-step and L-BFGS-evaluation rows [default: cpu 256,1024,4096,16384,65536;
    /// cuda the same and 262144,1048576; --quick 256,1024].
    #[arg(long)]
    pub sizes: Option<String>,
    /// N_c of the dense K_uu assembly [default: 256,1024,4096; --quick 128].
    #[arg(long)]
    pub dense_sizes: Option<String>,
    /// N_c of the Gram assembly, up to 10⁶ and beyond [default: 4096,16384 (cuda also 65536,
    /// 262144); --quick 128].
    #[arg(long)]
    pub gram_sizes: Option<String>,
    /// Measurements, comma separated: adam, lbfgs, dense, gram, lm, fig2a, gemm, rss; "all" is
    /// every one but rss.
    #[arg(long, default_value = "all")]
    pub only: String,
    /// Timed repetitions per measurement [default: 7; --quick 3]; long ones use fewer (≥ 3).
    #[arg(long)]
    pub reps: Option<usize>,
    /// N_c of the LM iteration [default: cpu 1024,4096; cuda 1024,4096,16384; --quick 128].
    #[arg(long)]
    pub lm_sizes: Option<String>,
    /// Matrix size of the peak gemm [default: cpu 2048, cuda 8192; --quick 256].
    #[arg(long)]
    pub gemm_n: Option<usize>,
    /// Small sizes, 3 repetitions, short warm-up: a smoke test, not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// CPU threads for candle's, faer's and the CPU engine's kernels (sets RAYON_NUM_THREADS;
    /// the engine gets the same count) [default: that
    /// variable, else every core].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Adam steps of the peak-RSS check (with `--only rss` or rss in the list).
    #[arg(long, default_value_t = 100_000)]
    pub rss_iters: u64,
    /// N_c of the peak-RSS check.
    #[arg(long, default_value_t = 256)]
    pub rss_nc: usize,
    /// Output folder: bench.csv, bench.json (and rss.csv).
    #[arg(long, default_value = "runs/bench")]
    pub out: PathBuf,
    /// Print the JSON document to stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub quiet: QuietArg,
}

/// `--gpu-engine` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuEngine {
    Gpu,
    Candle,
}

const MEASURES: [&str; 8] = [
    "adam", "lbfgs", "dense", "gram", "lm", "fig2a", "gemm", "rss",
];

fn sizes(given: Option<&str>, name: &str, default: &[usize]) -> Result<Vec<usize>> {
    match given {
        Some(s) => parse_usize_list(s).with_context(|| format!("--{name}")),
        None => Ok(default.to_vec()),
    }
}

/// Refuses, before anything is allocated, sizes whose largest measurement (4 × 40 network, f64)
/// needs more memory than this machine has, naming the option.
fn check_bench_sizes(step: &[usize], dense: &[usize], gram: &[usize], gemm_n: usize) -> Result<()> {
    use mspinn_model::size_plan::{
        available_memory, check_fits, ntk_bytes, training_bytes, Bytes, NtkMethod, TrainingSize,
    };
    let widths = [40u128; 4];
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0) as u128;
    let avail = available_memory();
    let mut step_size = TrainingSize::new(max(step), &widths, 1, candle_core::DType::F64);
    step_size.lbfgs_memory = 50;
    let checks = [
        ("--sizes", max(step), training_bytes(&step_size)),
        (
            "--dense-sizes",
            max(dense),
            ntk_bytes(max(dense) + 2, &widths, NtkMethod::Dense, 256 << 20),
        ),
        (
            "--gram-sizes",
            max(gram),
            ntk_bytes(max(gram) + 2, &widths, NtkMethod::Gram, 256 << 20),
        ),
        (
            "--gemm-n",
            gemm_n as u128,
            Bytes::of((gemm_n as u128).saturating_mul(gemm_n as u128), 3 * 8),
        ),
    ];
    for (option, n, needs) in checks {
        check_fits(
            &format!("{option} {n}"),
            needs,
            avail,
            &format!("lower {option}"),
        )?;
    }
    Ok(())
}

pub fn run(a: BenchArgs) -> Result<()> {
    let doc = compute(&a)?;
    let dir = run_dir(&a.out)?;
    write_json(&dir.join("bench.json"), &doc)?;
    write_atomic(&dir.join("bench.csv"), csv(&doc).as_bytes())?;
    if !doc.rss.is_empty() {
        let mut s = String::from("device,dtype,nc,iteration,seconds,vm_rss_kib,vm_hwm_kib\n");
        for r in &doc.rss {
            for p in &r.samples {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{:.3},{},{}",
                    r.device, r.dtype, r.nc, p.iteration, p.seconds, p.vm_rss_kib, p.vm_hwm_kib
                );
            }
        }
        write_atomic(&dir.join("rss.csv"), s.as_bytes())?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", table(&doc));
        println!("wrote {}/bench.csv and bench.json", dir.display());
    }
    Ok(())
}

/// Runs every requested measurement.
pub fn compute(a: &BenchArgs) -> Result<BenchDocument> {
    if let Some(t) = a.threads {
        use mspinn_model::size_plan::{available_cores, check_threads};
        check_threads("--threads", t, available_cores())?;
        // Before any kernel runs: rayon's global pool and candle read it once, on first use.
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    }
    // The CPU engine splits its tiles over its own thread count (default 1, for one trial per
    // core); the bench gives it the same threads as the gemm whose peak it is compared with.
    let engine = mspinn_model::EngineConfig::new(
        None,
        mspinn_model::EngineOptions {
            threads: a
                .threads
                .unwrap_or_else(candle_core::utils::get_num_threads),
            ..Default::default()
        },
    );
    // The CPU runs the CPU engine; a GPU the engine --gpu-engine names.
    let engine_for = |dev: &Device| -> mspinn_model::EngineConfig {
        let mut e = engine;
        e.engine = match (dev.is_cpu(), a.gpu_engine) {
            (true, _) => None,
            (false, GpuEngine::Gpu) => Some(mspinn_model::Engine::Gpu),
            (false, GpuEngine::Candle) => Some(mspinn_model::Engine::Candle),
        };
        e
    };
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut labels: Vec<String> = a
        .device
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if labels.len() == 1 && labels[0] != "cpu" && !a.alone {
        labels.insert(0, "cpu".into());
    }
    anyhow::ensure!(!labels.is_empty(), "--device: no device given");
    anyhow::ensure!(
        labels.len() <= 2,
        "--device {:?}: at most two devices side by side",
        a.device
    );
    let devices: Vec<Device> = labels
        .iter()
        .map(|l| parse_device(l))
        .collect::<Result<_>>()?;
    let dtypes: Vec<DType> = a
        .dtype
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_dtype)
        .collect::<Result<_>>()?;
    anyhow::ensure!(!dtypes.is_empty(), "--dtype: no dtype given");
    let measures: Vec<&'static str> = {
        let mut m = Vec::new();
        for item in a.only.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "all" {
                m.extend(MEASURES.iter().filter(|&&x| x != "rss"));
            } else if let Some(&known) = MEASURES.iter().find(|&&x| x == item) {
                m.push(known);
            } else {
                bail!(
                    "--only {item:?}: expected some of {} or all",
                    MEASURES.join(",")
                );
            }
        }
        m.dedup();
        m
    };
    anyhow::ensure!(!measures.is_empty(), "--only: nothing to measure");
    let plan = Plan {
        reps: a.reps.unwrap_or(if a.quick { 3 } else { 7 }).max(1),
        warmup: Duration::from_millis(if a.quick { 5 } else { 200 }),
        min_rep: Duration::from_millis(if a.quick { 2 } else { 20 }),
        budget: Duration::from_secs(if a.quick { 2 } else { 30 }),
    };

    let mut jobs = Vec::new();
    for (d, dev) in devices.iter().enumerate() {
        let gpu = !dev.is_cpu();
        let step_default: &[usize] = match (a.quick, gpu) {
            (true, _) => &[256, 1024],
            (false, false) => &[256, 1024, 4096, 16384, 65536],
            (false, true) => &[256, 1024, 4096, 16384, 65536, 262_144, 1_048_576],
        };
        let dense_default: &[usize] = if a.quick { &[128] } else { &[256, 1024, 4096] };
        let gram_default: &[usize] = match (a.quick, gpu) {
            (true, _) => &[128],
            (false, false) => &[4096, 16384],
            (false, true) => &[4096, 16384, 65536, 262_144],
        };
        let gemm_n = a.gemm_n.unwrap_or(match (a.quick, gpu) {
            (true, _) => 256,
            (false, false) => 2048,
            (false, true) => 8192,
        });
        let step = sizes(a.sizes.as_deref(), "sizes", step_default)?;
        let dense = sizes(a.dense_sizes.as_deref(), "dense-sizes", dense_default)?;
        let gram = sizes(a.gram_sizes.as_deref(), "gram-sizes", gram_default)?;
        let lm_default: &[usize] = match (a.quick, gpu) {
            (true, _) => &[128],
            (false, false) => &[1024, 4096],
            (false, true) => &[1024, 4096, 16384],
        };
        let lm = sizes(a.lm_sizes.as_deref(), "lm-sizes", lm_default)?;
        check_bench_sizes(&step, &dense, &gram, gemm_n)?;
        for &dtype in &dtypes {
            let mut push = |measure: &'static str, nc: usize| {
                jobs.push(Job {
                    device: d,
                    dtype,
                    measure,
                    nc,
                })
            };
            for &m in &measures {
                match m {
                    "gemm" => push("gemm", gemm_n),
                    "adam" | "lbfgs" => step.iter().for_each(|&n| push(m, n)),
                    "dense" => dense.iter().for_each(|&n| push(m, n)),
                    "gram" => gram.iter().for_each(|&n| push(m, n)),
                    "lm" => lm.iter().for_each(|&n| push(m, n)),
                    "fig2a" => push(m, 256),
                    _ => {}
                }
            }
        }
    }
    // The peak first, so every later row can be given its percentage as it is printed.
    jobs.sort_by_key(|j| (j.device, j.measure != "gemm"));

    let bar = if a.quiet.quiet || a.json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(jobs.len() as u64);
        b.set_style(
            ProgressStyle::with_template("bench [{bar:30}] {pos}/{len} ({elapsed}) {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        b
    };
    let mut records: Vec<BenchRecord> = Vec::new();
    for job in &jobs {
        let dev = &devices[job.device];
        let label = labels[job.device].as_str();
        let dt = job.dtype;
        bar.set_message(format!(
            "{label} {} {} N_c={}",
            dtype_name(dt),
            job.measure,
            job.nc
        ));
        records.extend(measure(job, &engine_for(dev), dev, label, &plan)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Percent of the peak: the faster gemm of the same device and dtype.
    let peaks: Vec<(String, String, f64)> = {
        let mut p: Vec<(String, String, f64)> = Vec::new();
        for r in records.iter().filter(|r| r.measure.starts_with("gemm")) {
            match p
                .iter_mut()
                .find(|(d, t, _)| *d == r.device && *t == r.dtype)
            {
                Some(e) => e.2 = e.2.max(r.gflops),
                None => p.push((r.device.clone(), r.dtype.clone(), r.gflops)),
            }
        }
        p
    };
    for r in &mut records {
        if let Some((_, _, pk)) = peaks
            .iter()
            .find(|(d, t, _)| *d == r.device && *t == r.dtype)
        {
            r.peak_gflops = Some(*pk);
            r.pct_peak = Some(100.0 * r.gflops / pk);
        }
    }
    let (comparisons, crossovers) = if labels.len() == 2 {
        compare(&records, &labels[0], &labels[1])
    } else {
        (Vec::new(), Vec::new())
    };

    let mut rss = Vec::new();
    if measures.contains(&"rss") {
        anyhow::ensure!(a.rss_iters >= 1, "--rss-iters must be at least 1");
        anyhow::ensure!(a.rss_nc >= 2, "--rss-nc must be at least 2");
        let rb = if a.quiet.quiet || a.json {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::new(a.rss_iters);
            b.set_style(
                ProgressStyle::with_template("rss [{bar:30}] {pos}/{len} eta {eta} {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            b
        };
        for &dt in &dtypes {
            rss.push(rss_check(
                &engine_for(&devices[0]),
                &devices[0],
                &labels[0],
                dt,
                a.rss_nc,
                a.rss_iters,
                &rb,
            )?);
        }
        rb.finish_and_clear();
    }

    Ok(BenchDocument {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_unix,
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads: candle_core::utils::get_num_threads(),
        devices: labels,
        build: build_info(),
        records,
        comparisons,
        crossovers,
        rss,
    })
}
