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

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mspinn_model::{Activation, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_model::{EngineConfig, EngineOptions, Evaluator, Gradient};
use mspinn_ntk::analysis::param_gram;
use mspinn_ntk::{analyse, DenseNtk, NtkOptions, Scaling};
use mspinn_problem::{collocation, PointSpec, Problem};
use mspinn_train::Adam;
use serde::Serialize;

use crate::args::{dtype_name, parse_dtype, parse_usize_list};
use crate::commands::train::{prepare, preset_spec};
use crate::device::parse_device;
use crate::output::{build_info, run_dir, write_atomic, write_json, BuildInfo};

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Devices, comma separated (cpu, cuda, cuda:N). With two, a second table puts them side by
    /// side with the time ratio and the crossover N_c.
    #[arg(long, default_value = "cpu")]
    pub device: String,
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
    /// Measurements, comma separated: adam, lbfgs, dense, gram, fig2a, gemm, rss; "all" is every
    /// one but rss.
    #[arg(long, default_value = "all")]
    pub only: String,
    /// Timed repetitions per measurement [default: 7; --quick 3]; long ones use fewer (≥ 3).
    #[arg(long)]
    pub reps: Option<usize>,
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
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The FLOP model. Conventions: a matmul (m×k)·(k×n) is 2mkn; every elementwise +, −, ×, ÷,
/// square, √ and tanh is 1 (an affine a·x + b is 2); copies, broadcasts and reductions to a
/// scalar are free except the loss sum (1 per row). Counts are per network of layer sizes
/// `dims` = [1, hidden…, 1] (N_p parameters) and per residual row; a step on N_c collocation
/// points runs N_c + N_b rows (N_b = 2 boundary rows).
///
/// Jet forward, per row (three streams: value, d/dx, d²/dx²):
/// - layer 0 (input 1): only the value stream needs a matmul, 2·d₀·d₁ (z' = W₀ is a broadcast,
///   z'' = 0); per unit 9: bias 1, tanh jets t, σ' = 1 − t², σ'' = −2tσ' (5), a' = σ'z' (1),
///   a'' = σ''z'² (2);
/// - hidden layer k ≥ 1: three stream matmuls 3·2·d_k·d_{k+1}; per unit 11: bias 1, tanh jets 5,
///   a' 1, a'' = σ''z'² + σ'z'' 4;
/// - output layer: 3·2·d_L·1 and the bias 1;
/// - residual and loss, per row 10: r = c₂u'' + c₁u' + c₀u − g (6), w·½r² (3), the sum (1).
///
/// Loss + gradient ≈ 3× the forward (reverse mode: each matmul has two adjoint matmuls, dX and
/// dW, and each elementwise op about two adjoint ops). Adam adds 14 per parameter
/// (m: 3, v: 4, m̂, v̂, √, +ε̂, ×lr, ÷, θ − …: 7).
///
/// Per-sample Jacobian row (crates/ntk jacobian.rs): the jet forward without the loss, the
/// outer products Σ_s z̄ˢ ⊗ hˢ (3 multiplies and 2 adds per weight, 5·d_k·d_{k+1} per layer),
/// and for each layer k ≥ 1 the three stream adjoints through W_k (3·2·d_k·d_{k+1}) and 26
/// elementwise ops per unit of layer k−1 (σ…σ''' 10, z̄ 10, z̄' 5, z̄'' 1).
/// Dense K_uu = J_u J_uᵀ: N_c rows + 2·N_c²·N_p (candle computes the full product).
/// Gram G = J^T J: N_c rows + N_c·N_p·(N_p + 1) (faer updates the lower triangle only: the
/// N_p(N_p+1)/2 entries at 2 FLOPs per row).
/// Fig. 2a adds two symmetric eigenvalue problems of order N_p (K_uu and K), ≈ (4/3)·N_p³ each
/// (the tridiagonal reduction; QR on the tridiagonal matrix is lower order).
/// Gemm: 2n³.
pub mod flops {
    /// Elementwise ops per unit of layer 0 in the jet forward (see the module docs).
    pub const FIRST_LAYER_UNIT: f64 = 9.0;
    /// Elementwise ops per unit of a hidden layer k ≥ 1 in the jet forward.
    pub const HIDDEN_LAYER_UNIT: f64 = 11.0;
    /// Residual, weighted half-square and its share of the sum, per row.
    pub const LOSS_PER_ROW: f64 = 10.0;
    /// Adam's update per parameter.
    pub const ADAM_PER_PARAM: f64 = 14.0;
    /// Reverse sweep of the per-sample Jacobian, elementwise ops per unit of the layer below.
    pub const JACOBIAN_REVERSE_UNIT: f64 = 26.0;

    pub fn num_params(dims: &[usize]) -> f64 {
        dims.windows(2).map(|w| (w[0] * w[1] + w[1]) as f64).sum()
    }

    /// (matmul, elementwise) FLOPs of the jet forward for one row, without the loss.
    pub fn jet_forward_row(dims: &[usize]) -> (f64, f64) {
        let last = dims.len() - 2;
        let mut mm = 0.0;
        let mut ew = 0.0;
        for (k, w) in dims.windows(2).enumerate() {
            let (i, o) = (w[0] as f64, w[1] as f64);
            if k == 0 {
                mm += 2.0 * i * o;
                ew += FIRST_LAYER_UNIT * o;
            } else if k < last {
                mm += 3.0 * 2.0 * i * o;
                ew += HIDDEN_LAYER_UNIT * o;
            } else {
                mm += 3.0 * 2.0 * i * o;
                ew += o;
            }
        }
        (mm, ew)
    }

    /// Loss and gradient over `rows` residual rows: 3 × (jet forward + loss).
    pub fn loss_and_grad(dims: &[usize], rows: usize) -> f64 {
        let (mm, ew) = jet_forward_row(dims);
        3.0 * (mm + ew + LOSS_PER_ROW) * rows as f64
    }

    /// One Adam step: loss and gradient plus the update.
    pub fn adam_step(dims: &[usize], rows: usize) -> f64 {
        loss_and_grad(dims, rows) + ADAM_PER_PARAM * num_params(dims)
    }

    /// One per-sample Jacobian row ∂r_i/∂θ.
    pub fn jacobian_row(dims: &[usize]) -> f64 {
        let (mm, ew) = jet_forward_row(dims);
        let mut rev = 0.0;
        for (k, w) in dims.windows(2).enumerate() {
            let (i, o) = (w[0] as f64, w[1] as f64);
            rev += 5.0 * i * o;
            if k > 0 {
                rev += 3.0 * 2.0 * i * o + JACOBIAN_REVERSE_UNIT * i;
            }
        }
        mm + ew + rev
    }

    /// Dense K_uu: N_c Jacobian rows and the N_c(N_c + 1)/2 distinct entries of the symmetric
    /// J_u J_uᵀ, 2 N_p flops each: the floor of the J Jᵀ formulation, which is what mspinn
    /// computes on the CPU (a full product, as JAX's, does twice this).
    pub fn dense_kuu(dims: &[usize], nc: usize) -> f64 {
        let n = nc as f64;
        n * jacobian_row(dims) + n * (n + 1.0) * num_params(dims)
    }

    /// Gram G_u = J_uᵀ J_u by lower-triangle rank updates (the N_b boundary rows' own tiny Gram
    /// is left out).
    pub fn gram(dims: &[usize], nc: usize) -> f64 {
        let (n, p) = (nc as f64, num_params(dims));
        n * jacobian_row(dims) + n * p * (p + 1.0)
    }

    /// One Fig. 2a record: the Gram (or dense) assembly and two order-N_p eigenproblems.
    pub fn fig2a(dims: &[usize], nc: usize) -> f64 {
        let p = num_params(dims);
        gram(dims, nc) + 2.0 * (4.0 / 3.0) * p * p * p
    }

    pub fn gemm(n: usize) -> f64 {
        2.0 * (n as f64).powi(3)
    }
}

/// One timed measurement.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRecord {
    pub device: String,
    pub dtype: String,
    /// adam, lbfgs, dense, gram, fig2a, gemm-candle, gemm-faer.
    pub measure: String,
    /// Collocation points N_c (for gemm: the matrix size n).
    pub nc: usize,
    pub np: usize,
    pub reps: usize,
    /// Calls per repetition.
    pub inner: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    /// FLOPs of one call by the model in [`flops`].
    pub flops: f64,
    /// flops / median time.
    pub gflops: f64,
    /// The device's gemm peak in this dtype, from this run.
    pub peak_gflops: Option<f64>,
    pub pct_peak: Option<f64>,
}

/// Two devices side by side.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub measure: String,
    pub dtype: String,
    pub nc: usize,
    pub first_ms: f64,
    pub second_ms: f64,
    /// first / second: above 1 the second device is faster.
    pub ratio: f64,
}

/// The smallest N_c from which the second device is faster at every larger size measured.
#[derive(Clone, Debug, Serialize)]
pub struct Crossover {
    pub measure: String,
    pub dtype: String,
    pub nc: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RssSample {
    pub iteration: u64,
    pub seconds: f64,
    pub vm_rss_kib: u64,
    pub vm_hwm_kib: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RssReport {
    pub device: String,
    pub dtype: String,
    pub nc: usize,
    pub iterations: u64,
    pub seconds: f64,
    /// Peak RSS after the first 10% of the iterations (allocator and caches warmed up).
    pub hwm_after_warmup_kib: u64,
    pub hwm_end_kib: u64,
    /// hwm_end − hwm_after_warmup.
    pub growth_kib: i64,
    pub samples: Vec<RssSample>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchDocument {
    pub command: String,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
    pub cpu_model: String,
    pub cores: usize,
    /// Threads candle's and faer's CPU kernels use (RAYON_NUM_THREADS or every core).
    pub threads: usize,
    pub devices: Vec<String>,
    pub build: BuildInfo,
    pub records: Vec<BenchRecord>,
    pub comparisons: Vec<Comparison>,
    pub crossovers: Vec<Crossover>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rss: Vec<RssReport>,
}

const MEASURES: [&str; 7] = ["adam", "lbfgs", "dense", "gram", "fig2a", "gemm", "rss"];

/// How long to measure: set by --quick and --reps.
#[derive(Clone, Copy)]
struct Plan {
    reps: usize,
    warmup: Duration,
    min_rep: Duration,
    /// Past this much time per measurement, fewer repetitions (never below 3).
    budget: Duration,
}

struct Timing {
    reps: usize,
    inner: usize,
    median: f64,
    min: f64,
}

/// Warm-up, then `reps` repetitions of `inner` calls; per-call seconds.
fn time_calls(plan: &Plan, dev: &Device, f: &mut dyn FnMut() -> Result<()>) -> Result<Timing> {
    let call = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let t = Instant::now();
        f()?;
        dev.synchronize()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let start = Instant::now();
    let mut last = call(f)?;
    if last > plan.budget.as_secs_f64() {
        // One call longer than the whole budget (a Gram assembly at N_c = 10⁶ on a CPU): that
        // call is the measurement, reported with reps = 1.
        return Ok(Timing {
            reps: 1,
            inner: 1,
            median: last,
            min: last,
        });
    }
    let mut warm = 1;
    while start.elapsed() < plan.warmup && warm < 50 {
        last = call(f)?;
        warm += 1;
    }
    let per = last.max(1e-7);
    let inner = ((plan.min_rep.as_secs_f64() / per).ceil() as usize).max(1);
    let fit = (plan.budget.as_secs_f64() / (per * inner as f64)).floor() as usize;
    let reps = plan.reps.min(fit.max(3)).max(1);
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..inner {
            f()?;
        }
        dev.synchronize()?;
        times.push(t.elapsed().as_secs_f64() / inner as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(Timing {
        reps,
        inner,
        median: times[times.len() / 2],
        min: times[0],
    })
}

fn record(
    device: &str,
    dtype: DType,
    measure: &str,
    nc: usize,
    np: usize,
    flop: f64,
    t: &Timing,
) -> BenchRecord {
    BenchRecord {
        device: device.into(),
        dtype: dtype_name(dtype).into(),
        measure: measure.into(),
        nc,
        np,
        reps: t.reps,
        inner: t.inner,
        median_ms: t.median * 1e3,
        min_ms: t.min * 1e3,
        flops: flop,
        gflops: flop / t.median / 1e9,
        peak_gflops: None,
        pct_peak: None,
    }
}

/// The Fig. 4 Darcy PINN at `nc` points: its residual set and a fresh seed-0 network.
fn darcy(nc: usize, dtype: DType, dev: &Device) -> Result<(Mlp, ResidualSet, Vec<usize>)> {
    let mut spec = preset_spec("fig4-darcy")?;
    spec.points.n = nc;
    spec.training.dtype = dtype_name(dtype).into();
    let prep = prepare(&spec, dev)?;
    let cfg = MlpConfig::new(
        spec.network.widths.clone(),
        spec.network.activation,
        spec.network.init,
        spec.network.seed,
    );
    let dims = cfg.dims();
    Ok((Mlp::new(cfg, dtype, dev)?, prep.set, dims))
}

/// The Fig. 2a setting at ε = 1/100 (the stiffest of its sweep): 1×50 tanh, N(0,1) init,
/// paper-4.1 coefficient, 256 equispaced points, λ = 1.
fn fig2a_setup(dtype: DType, dev: &Device) -> Result<(Mlp, ResidualSet, Vec<usize>)> {
    let problem = Problem::preset("ntk-4.1", Some(0.01))?;
    let x = collocation(problem.domain, PointSpec::Endpoints(256))?;
    let set = ResidualSet::new(
        &problem.pde_rows(&x)?,
        &problem.boundary_rows(),
        1.0,
        dtype,
        dev,
    )?;
    let cfg = MlpConfig::new(vec![50], Activation::Tanh, Init::Normal, 0);
    let dims = cfg.dims();
    Ok((Mlp::new(cfg, dtype, dev)?, set, dims))
}

fn gemm_candle(n: usize, dtype: DType, dev: &Device, plan: &Plan) -> Result<Timing> {
    let a = Tensor::randn(0f64, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f64, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    time_calls(plan, dev, &mut || {
        let c = a.matmul(&b)?;
        drop(c);
        Ok(())
    })
}

fn gemm_faer<T: faer::traits::ComplexField + From<f32> + Copy>(
    n: usize,
    plan: &Plan,
) -> Result<Timing> {
    let a = faer::Mat::<T>::from_fn(n, n, |i, j| T::from(((i * 7 + j * 13) % 17) as f32 / 17.0));
    let b = faer::Mat::<T>::from_fn(n, n, |i, j| T::from(((i * 5 + j * 3) % 11) as f32 / 11.0));
    let mut c = faer::Mat::<T>::zeros(n, n);
    time_calls(plan, &Device::Cpu, &mut || {
        faer::linalg::matmul::matmul(
            c.as_mut(),
            faer::Accum::Replace,
            a.as_ref(),
            b.as_ref(),
            T::from(1.0),
            faer::Par::rayon(0),
        );
        Ok(())
    })
}

/// VmRSS and VmHWM of this process, KiB (Linux; zeros elsewhere).
fn rss_now() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One Adam step as the trainer runs it: the evaluator's loss and gradient, then the update.
fn trainer_adam_step(
    ev: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &ResidualSet,
    adam: &mut Adam,
    grad: &mut Gradient,
    lr: f64,
) -> Result<()> {
    ev.loss_and_grad(mlp, set, grad)?;
    adam.step_with(grad, lr)?;
    Ok(())
}

fn rss_check(
    engine: &EngineConfig,
    dev: &Device,
    label: &str,
    dtype: DType,
    nc: usize,
    iters: u64,
    bar: &ProgressBar,
) -> Result<RssReport> {
    let (mlp, set, _) = darcy(nc, dtype, dev)?;
    let mut adam = Adam::new(mlp.vars())?;
    let mut ev = mspinn_model::evaluator::build(engine, &mlp)?;
    let mut grad = Gradient::default();
    let every = (iters / 50).max(1);
    let warm = iters / 10;
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut hwm_warm = None;
    bar.set_length(iters);
    bar.set_position(0);
    for it in 0..iters {
        trainer_adam_step(&mut *ev, &mlp, &set, &mut adam, &mut grad, 1e-4)?;
        if it + 1 == warm.max(1) {
            hwm_warm = Some(rss_now().1);
        }
        if it % every == 0 || it + 1 == iters {
            dev.synchronize()?;
            let (rss, hwm) = rss_now();
            samples.push(RssSample {
                iteration: it + 1,
                seconds: start.elapsed().as_secs_f64(),
                vm_rss_kib: rss,
                vm_hwm_kib: hwm,
            });
            bar.set_position(it + 1);
            bar.set_message(format!(
                "rss {label} {} N_c={nc}: {} KiB",
                dtype_name(dtype),
                rss
            ));
        }
    }
    let end = rss_now().1;
    let hw = hwm_warm.unwrap_or(end);
    Ok(RssReport {
        device: label.into(),
        dtype: dtype_name(dtype).into(),
        nc,
        iterations: iters,
        seconds: start.elapsed().as_secs_f64(),
        hwm_after_warmup_kib: hw,
        hwm_end_kib: end,
        growth_kib: end as i64 - hw as i64,
        samples,
    })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

struct Job {
    device: usize,
    dtype: DType,
    measure: &'static str,
    nc: usize,
}

fn sizes(given: Option<&str>, name: &str, default: &[usize]) -> Result<Vec<usize>> {
    match given {
        Some(s) => parse_usize_list(s).with_context(|| format!("--{name}")),
        None => Ok(default.to_vec()),
    }
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
        anyhow::ensure!(t >= 1, "--threads must be at least 1");
        // Before any kernel runs: rayon's global pool and candle read it once, on first use.
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    }
    // The CPU engine splits its tiles over its own thread count (default 1, for one trial per
    // core); the bench gives it the same threads as the gemm whose peak it is compared with.
    let engine = EngineConfig::new(
        None,
        EngineOptions {
            threads: a
                .threads
                .unwrap_or_else(candle_core::utils::get_num_threads),
            ..Default::default()
        },
    );
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let labels: Vec<String> = a
        .device
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
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
                    "fig2a" => push(m, 256),
                    _ => {}
                }
            }
        }
    }
    // The peak first, so every later row can be given its percentage as it is printed.
    jobs.sort_by_key(|j| (j.device, j.measure != "gemm"));

    let bar = if a.quiet || a.json {
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
        match job.measure {
            "gemm" => {
                let n = job.nc;
                let t = gemm_candle(n, dt, dev, &plan)?;
                records.push(record(label, dt, "gemm-candle", n, 0, flops::gemm(n), &t));
                if dev.is_cpu() {
                    let t = match dt {
                        DType::F32 => gemm_faer::<f32>(n, &plan)?,
                        _ => gemm_faer::<f64>(n, &plan)?,
                    };
                    records.push(record(label, dt, "gemm-faer", n, 0, flops::gemm(n), &t));
                }
            }
            "adam" => {
                let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
                let mut adam = Adam::new(mlp.vars())?;
                let mut ev = mspinn_model::evaluator::build(&engine, &mlp)?;
                let mut grad = Gradient::default();
                let t = time_calls(&plan, dev, &mut || {
                    trainer_adam_step(&mut *ev, &mlp, &set, &mut adam, &mut grad, 1e-3)
                })?;
                let f = flops::adam_step(&dims, set.len());
                records.push(record(label, dt, "adam", job.nc, mlp.num_params(), f, &t));
            }
            "lbfgs" => {
                let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
                let theta = mlp.flat_params()?;
                let mut ev = mspinn_model::evaluator::build(&engine, &mlp)?;
                let mut grad = Gradient::default();
                let t = time_calls(&plan, dev, &mut || {
                    mlp.set_flat_params(&theta)?;
                    ev.loss_and_grad(&mlp, &set, &mut grad)?;
                    std::hint::black_box(grad.to_f64()?);
                    Ok(())
                })?;
                let f = flops::loss_and_grad(&dims, set.len());
                records.push(record(label, dt, "lbfgs", job.nc, mlp.num_params(), f, &t));
            }
            "dense" => {
                let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
                let w = Scaling::Appendix.weights(&set.host_w);
                let nc = set.n_pde;
                let mut ev = mspinn_model::evaluator::build(&engine, &mlp)?;
                let t = time_calls(&plan, dev, &mut || {
                    let j = ev.jacobian(&mlp, &set, 0..nc)?;
                    std::hint::black_box(DenseNtk::from_jacobian(&j, &w[..nc], nc)?);
                    Ok(())
                })?;
                let f = flops::dense_kuu(&dims, nc);
                records.push(record(label, dt, "dense", nc, mlp.num_params(), f, &t));
            }
            "gram" => {
                let (mlp, set, dims) = darcy(job.nc, dt, dev)?;
                let w = Scaling::Appendix.weights(&set.host_w);
                let chunk = NtkOptions::default().chunk_bytes;
                let mut ev = mspinn_model::evaluator::build(&engine, &mlp)?;
                let t = time_calls(&plan, dev, &mut || {
                    std::hint::black_box(param_gram(&mut *ev, &mlp, &set, &w, chunk)?);
                    Ok(())
                })?;
                let f = flops::gram(&dims, set.n_pde);
                records.push(record(
                    label,
                    dt,
                    "gram",
                    set.n_pde,
                    mlp.num_params(),
                    f,
                    &t,
                ));
            }
            "fig2a" => {
                let (mlp, set, dims) = fig2a_setup(dt, dev)?;
                let opts = NtkOptions::default();
                let mut ev = mspinn_model::evaluator::build(&engine, &mlp)?;
                let t = time_calls(&plan, dev, &mut || {
                    std::hint::black_box(analyse(&mut *ev, &mlp, &set, &opts)?);
                    Ok(())
                })?;
                let f = flops::fig2a(&dims, set.n_pde);
                records.push(record(
                    label,
                    dt,
                    "fig2a",
                    set.n_pde,
                    mlp.num_params(),
                    f,
                    &t,
                ));
            }
            other => bail!("internal: unknown measure {other}"),
        }
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
        let rb = if a.quiet || a.json {
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
                &engine,
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

/// Rows measured on both devices, and per (measure, dtype) the crossover N_c.
fn compare(
    records: &[BenchRecord],
    first: &str,
    second: &str,
) -> (Vec<Comparison>, Vec<Crossover>) {
    let mut cmp = Vec::new();
    for r in records.iter().filter(|r| r.device == first) {
        if let Some(s) = records.iter().find(|s| {
            s.device == second && s.measure == r.measure && s.dtype == r.dtype && s.nc == r.nc
        }) {
            cmp.push(Comparison {
                measure: r.measure.clone(),
                dtype: r.dtype.clone(),
                nc: r.nc,
                first_ms: r.median_ms,
                second_ms: s.median_ms,
                ratio: r.median_ms / s.median_ms,
            });
        }
    }
    let mut keys: Vec<(String, String)> = cmp
        .iter()
        .filter(|c| !c.measure.starts_with("gemm") && c.measure != "fig2a")
        .map(|c| (c.measure.clone(), c.dtype.clone()))
        .collect();
    keys.dedup();
    let crossovers = keys
        .into_iter()
        .map(|(m, d)| {
            let mut rows: Vec<&Comparison> = cmp
                .iter()
                .filter(|c| c.measure == m && c.dtype == d)
                .collect();
            rows.sort_by_key(|c| c.nc);
            // Walk down from the largest size while the second device stays faster.
            let mut nc = None;
            for c in rows.iter().rev() {
                if c.ratio > 1.0 {
                    nc = Some(c.nc);
                } else {
                    break;
                }
            }
            Crossover {
                measure: m,
                dtype: d,
                nc,
            }
        })
        .collect();
    (cmp, crossovers)
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.prec$}"))
}

/// bench.csv: one line per record.
pub fn csv(doc: &BenchDocument) -> String {
    let mut s = String::from(
        "device,dtype,measure,nc,np,reps,inner,median_ms,min_ms,flops,gflops,peak_gflops,pct_peak,threads\n",
    );
    for r in &doc.records {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.6},{:.6},{:e},{:.4},{},{},{}",
            r.device,
            r.dtype,
            r.measure,
            r.nc,
            r.np,
            r.reps,
            r.inner,
            r.median_ms,
            r.min_ms,
            r.flops,
            r.gflops,
            r.peak_gflops.map_or(String::new(), |v| format!("{v:.4}")),
            r.pct_peak.map_or(String::new(), |v| format!("{v:.4}")),
            doc.threads
        );
    }
    s
}

/// The printed tables.
pub fn table(doc: &BenchDocument) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "mspinn bench: {} ({} cores, {} threads), {} build",
        doc.cpu_model, doc.cores, doc.threads, doc.build.profile
    );
    let _ = writeln!(
        s,
        "{:<12} {:<7} {:<4} {:>8} {:>6} {:>11} {:>11} {:>10} {:>9} {:>7} {:>5}",
        "measure",
        "device",
        "type",
        "N_c",
        "N_p",
        "median ms",
        "min ms",
        "GFLOP",
        "GFLOP/s",
        "% peak",
        "reps"
    );
    for r in &doc.records {
        let _ = writeln!(
            s,
            "{:<12} {:<7} {:<4} {:>8} {:>6} {:>11.3} {:>11.3} {:>10.4} {:>9.2} {:>7} {:>5}",
            r.measure,
            r.device,
            r.dtype,
            r.nc,
            r.np,
            r.median_ms,
            r.min_ms,
            r.flops / 1e9,
            r.gflops,
            opt(r.pct_peak, 1),
            format!("{}×{}", r.reps, r.inner)
        );
    }
    if !doc.comparisons.is_empty() {
        let (a, b) = (&doc.devices[0], &doc.devices[1]);
        let _ = writeln!(
            s,
            "\n{a} vs {b} (median ms; ratio = {a}/{b}, > 1: {b} faster)"
        );
        let _ = writeln!(
            s,
            "{:<12} {:<4} {:>8} {:>11} {:>11} {:>8}",
            "measure", "type", "N_c", a, b, "ratio"
        );
        for c in &doc.comparisons {
            let _ = writeln!(
                s,
                "{:<12} {:<4} {:>8} {:>11.3} {:>11.3} {:>8.2}",
                c.measure, c.dtype, c.nc, c.first_ms, c.second_ms, c.ratio
            );
        }
        for c in &doc.crossovers {
            let _ = writeln!(
                s,
                "crossover {} {}: {}",
                c.measure,
                c.dtype,
                c.nc.map_or_else(
                    || format!("{b} never faster at every larger size measured"),
                    |n| format!("{b} faster from N_c = {n}")
                )
            );
        }
    }
    for r in &doc.rss {
        let _ = writeln!(
            s,
            "\npeak RSS over {} Adam steps ({} {}, N_c = {}, {:.0} s): VmHWM {} KiB after 10%, {} KiB at the end (growth {} KiB)",
            r.iterations, r.device, r.dtype, r.nc, r.seconds, r.hwm_after_warmup_kib, r.hwm_end_kib, r.growth_kib
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::flops::*;

    /// The tiny net 1 → 2 → 1 counted by hand from the rules in the module docs.
    #[test]
    fn flop_formulas_match_a_hand_count() {
        let dims = [1, 2, 1];
        assert_eq!(num_params(&dims), 7.0);
        // Forward: layer 0 matmul 2·1·2 = 4, output 3 streams · 2·2·1 = 12; elementwise: 9 per
        // unit of layer 0 (18) and the output bias (1).
        assert_eq!(jet_forward_row(&dims), (16.0, 19.0));
        // (16 + 19 + 10 loss) · 3 = 135 per row.
        assert_eq!(loss_and_grad(&dims, 10), 1350.0);
        // + 14 · 7 for Adam.
        assert_eq!(adam_step(&dims, 10), 1448.0);
        // Jacobian row: forward 35; outer products 5·1·2 + 5·2·1 = 20; back through W₁:
        // 6·2·1 = 12 and 26 · 2 units = 52.
        assert_eq!(jacobian_row(&dims), 119.0);
        // Dense: 3 rows + 3·4·7 (lower triangle); Gram: 3 rows + 3·7·8.
        assert_eq!(dense_kuu(&dims, 3), 357.0 + 84.0);
        assert_eq!(gram(&dims, 3), 357.0 + 168.0);
        assert_eq!(gemm(4), 128.0);
    }

    /// Two hidden layers exercise the hidden-layer rule (3 stream matmuls, 11 per unit).
    #[test]
    fn hidden_layer_rule() {
        let dims = [1, 3, 2, 1];
        // matmul: 2·1·3 + 6·3·2 + 6·2·1 = 6 + 36 + 12; elementwise 9·3 + 11·2 + 1.
        assert_eq!(jet_forward_row(&dims), (54.0, 50.0));
        // Jacobian: 104 + 5·(3 + 6 + 2) + (36 + 26·3) + (12 + 26·2).
        assert_eq!(jacobian_row(&dims), 104.0 + 55.0 + 114.0 + 64.0);
        // The paper's 4×40 network has 5041 parameters.
        assert_eq!(num_params(&[1, 40, 40, 40, 40, 1]), 5041.0);
    }
}
