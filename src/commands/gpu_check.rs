//! `mspinn gpu-check`: the device under test against a reference device (the CPU), on fresh
//! random inputs, for everything training and the NTK compute.
//!
//! Both sides build the same network (one seeded host RNG draws every weight, so a seed gives the
//! same network on every device) and the same random collocation points of the Fig. 4 Darcy PINN
//! (4×40 tanh, ε = 1/32, λ = 2), then compare u, u', u'', the residual, the loss, its gradient
//! and ‖K_uu‖_F. The loss and gradient go through the evaluator training builds for the device
//! (the CPU engine on the CPU, candle on a GPU), so a fused residual kernel wired into it is
//! checked here too. The `gpu:` rows go through the GPU engine behind the seam (`--engine gpu`:
//! cuBLAS and engine.cu on a GPU; `gpu-host`, the same step on the host backend, on the CPU):
//! loss, gradient, residuals, Jacobian rows, ‖K_uu‖_F from its Jacobian, and θ and Adam's second
//! moment after 10 resident Adam steps. Every output must also be finite, which catches a kernel
//! that leaves elements unwritten (poisoned).
//!
//! The comparison is relative in the max norm, ‖a − b‖_∞ / ‖b‖_∞, with 1e-10 in f64 and 1e-4 in
//! f32: the two devices sum in different orders (cuBLAS vs gemm blocking) and use different tanh
//! code, so agreement is to a few hundred ulps, not bitwise.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use clap::Args;
use mspinn_model::{Engine, EngineConfig, Evaluator, Gradient, Mlp, MlpConfig, ResidualSet};
use mspinn_ntk::analysis::param_gram;
use mspinn_ntk::Scaling;
use mspinn_train::lm::{gauss_newton_step, Damping, SolveSpace};

use crate::args::{dtype_name, parse_dtype, parse_usize_list};
use crate::device::{describe, parse_device};
use crate::run::{prepare, preset_spec};

#[derive(Args, Clone, Debug)]
pub struct GpuCheckArgs {
    /// The device under test: cuda, cuda:N (or cpu, which checks the check itself).
    #[arg(long, default_value = "cuda")]
    pub device: String,
    /// The reference device.
    #[arg(long, default_value = "cpu")]
    pub reference: String,
    /// Random collocation points (uniform on (−π, π)); the two boundary rows come on top.
    #[arg(long, default_value_t = 2048)]
    pub nc: usize,
    /// Seed of the points and the network [default: fresh from the clock, printed so that a
    /// failure can be rerun].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Hidden widths (the paper's 4×40 Darcy PINN by default).
    #[arg(long, default_value = "40,40,40,40")]
    pub widths: String,
    /// The dtypes to check, each with its own tolerance (f64: 1e-10, f32: 1e-4).
    #[arg(long, default_value = "f64,f32")]
    pub dtypes: String,
    /// Also write the table as JSON to this file (rows, tolerances, timings, seed, devices).
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
}

/// One row of the JSON report.
#[derive(serde::Serialize)]
struct JsonRow {
    dtype: &'static str,
    quantity: &'static str,
    values: usize,
    rel_error: f64,
    tolerance: f64,
    all_finite: bool,
    pass: bool,
}

/// Relative tolerance of one dtype.
pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-4,
        _ => 1e-10,
    }
}

/// Everything compared, on the host in f64.
struct Outputs {
    quantities: Vec<(&'static str, Vec<f64>)>,
    seconds: f64,
}

/// The GPU engine behind the seam on `device`: `--engine gpu` (cuBLAS and the PTX of engine.cu)
/// on a GPU, `gpu-host` (the same step on the host backend: reference gemm, host-compiled
/// headers) on the CPU, so the check compares the CUDA backend with the host one call for call.
fn gpu_engine(mlp: &Mlp) -> Result<Box<dyn Evaluator>> {
    let engine = if mlp.device().is_cpu() {
        Engine::GpuHost
    } else {
        Engine::Gpu
    };
    Ok(mspinn_model::evaluator::build(
        &EngineConfig::new(Some(engine), Default::default()),
        mlp,
    )?)
}

/// Jacobian rows compared (the first ones: PDE rows).
const JACOBIAN_ROWS: usize = 64;
/// Resident Adam steps compared, at this learning rate.
const ADAM_STEPS: usize = 10;
const ADAM_LR: f64 = 1e-3;
/// The damping of the compared LM step (absolute; large enough that the step is well posed in
/// f32 too).
const LM_MU: f64 = 1e-2;

/// Loss, gradient, residuals, Jacobian rows, ‖K_uu‖_F and θ after resident Adam steps through
/// the GPU engine.
fn gpu_engine_outputs(
    config: &MlpConfig,
    set: &ResidualSet,
    dtype: DType,
    device: &Device,
) -> Result<Vec<(&'static str, Vec<f64>)>> {
    let mlp = Mlp::new(config.clone(), dtype, device)?;
    let mut ev = gpu_engine(&mlp)?;
    let terms = ev.loss(&mlp, set)?;
    let mut grad = Gradient::default();
    ev.loss_and_grad(&mlp, set, &mut grad)?;
    let mut r = Vec::new();
    ev.residuals(&mlp, set, &mut r)?;
    let mut j = Vec::new();
    ev.jacobian_f64(&mlp, set, 0..JACOBIAN_ROWS.min(set.len()), &mut j)?;
    let w = Scaling::Appendix.weights(&set.host_w);
    let gram = param_gram(&mut *ev, &mlp, set, &w, None)?;
    // One damped Gauss–Newton (LM) step from this θ: J and r from the GPU engine. In f64 only:
    // the normal equations amplify f32's last-bit differences by their condition number.
    let lm = if dtype != DType::F64 {
        None
    } else {
        Some(gauss_newton_step(
            &mut *ev,
            &mlp,
            set,
            LM_MU,
            SolveSpace::Auto,
            Damping::default(),
        )?)
    };
    let ra = ev
        .resident_adam()
        .context("the GPU engine keeps Adam on the device")?;
    ra.load(&mlp, set, &[], &[], 0)?;
    for _ in 0..ADAM_STEPS {
        ra.step(set, ADAM_LR)?;
    }
    let (mut m, mut v) = (Vec::new(), Vec::new());
    ra.store(&mlp, &mut m, &mut v)?;
    let mut out = vec![
        ("gpu:loss", vec![terms.total, terms.pde, terms.bc]),
        ("gpu:grad", grad.to_f64()?),
        ("gpu:resid", r),
        ("gpu:J", j),
        ("gpu:|K_uu|", vec![gram.k_uu_fro()]),
        ("gpu:adam", mlp.flat_params()?),
        ("gpu:adam-v", v),
    ];
    out.extend(lm.map(|d| ("gpu:lm-step", d)));
    Ok(out)
}

fn host(t: &candle_core::Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// Jets, residual, loss, gradient and ‖K_uu‖_F of a fresh network on `device`.
fn compute(
    config: &MlpConfig,
    set: &ResidualSet,
    dtype: DType,
    device: &Device,
) -> Result<Outputs> {
    let t = Instant::now();
    let mlp = Mlp::new(config.clone(), dtype, device)?;
    let jets = mlp.jets(&set.x)?;
    let (half_sq, r) = mlp.weighted_half_squares(set)?;
    // The device's own engine: the CPU engine on the CPU, candle on the GPU.
    let mut ev = mspinn_model::evaluator::build(&EngineConfig::default(), &mlp)?;
    let mut grad = Gradient::default();
    let terms = ev.loss_and_grad(&mlp, set, &mut grad)?;
    let w = Scaling::Appendix.weights(&set.host_w);
    let gram = param_gram(&mut *ev, &mlp, set, &w, None)?;
    let quantities = vec![
        ("u", host(&jets.u)?),
        ("u'", host(&jets.du)?),
        ("u''", host(&jets.d2u)?),
        ("residual", host(&r)?),
        ("wr^2/2", host(&half_sq)?),
        ("loss", vec![terms.total, terms.pde, terms.bc]),
        ("gradient", grad.to_f64()?),
        ("|K_uu|_F", vec![gram.k_uu_fro()]),
    ];
    let mut quantities = quantities;
    quantities.extend(gpu_engine_outputs(config, set, dtype, device)?);
    Ok(Outputs {
        quantities,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub rel_error: f64,
    pub all_finite: bool,
    pub pass: bool,
}

/// ‖a − b‖_∞ / ‖b‖_∞ (absolute when b = 0), and whether it is within `tol` with every value
/// finite on both sides. Different lengths are a failure, not a panic.
pub fn compare(a: &[f64], b: &[f64], tol: f64) -> Comparison {
    let all_finite = a.iter().chain(b).all(|v| v.is_finite());
    if a.len() != b.len() || a.is_empty() {
        return Comparison {
            rel_error: f64::INFINITY,
            all_finite,
            pass: false,
        };
    }
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    let rel_error = if scale > 0.0 { diff / scale } else { diff };
    Comparison {
        rel_error,
        all_finite,
        pass: all_finite && rel_error <= tol,
    }
}

fn fresh_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn run(a: GpuCheckArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let reference = parse_device(&a.reference).context("--reference")?;
    anyhow::ensure!(a.nc >= 1, "--nc must be at least 1");
    let widths = parse_usize_list(&a.widths).context("--widths")?;
    let dtypes: Vec<DType> = a
        .dtypes
        .split(',')
        .map(|s| parse_dtype(s.trim()))
        .collect::<Result<_>>()
        .context("--dtypes")?;
    anyhow::ensure!(!dtypes.is_empty(), "--dtypes: give f64, f32 or both");
    let seed = a.seed.unwrap_or_else(fresh_seed);

    // The Fig. 4 Darcy PINN with random points and a random network, both from `seed`.
    let mut spec = preset_spec("fig4-darcy")?;
    spec.network.widths = widths.clone();
    spec.network.seed = seed;
    spec.points.kind = "random".into();
    spec.points.n = a.nc;
    let config = MlpConfig::new(
        widths.clone(),
        spec.network.activation,
        spec.network.init,
        seed,
    );
    config.validate()?;

    println!("gpu-check: device    {}", describe(&device));
    println!("gpu-check: reference {}", describe(&reference));
    println!(
        "gpu-check: {} tanh Darcy PINN (twoscale-darcy, ε = 1/32, λ = {}), N_p = {}, N_c = {} random points + 2 boundary rows, seed {seed} (rerun with --seed {seed})",
        widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("×"),
        spec.training.lambda,
        config.num_params(),
        a.nc,
    );
    println!();
    println!(
        "{:<5} {:<11} {:>8} {:>12} {:>10}  result",
        "dtype", "quantity", "values", "rel. error", "tolerance"
    );
    let mut failed = Vec::new();
    let mut rows = 0;
    let mut json_rows = Vec::new();
    let mut timings = Vec::new();
    for &dtype in &dtypes {
        spec.training.dtype = dtype_name(dtype).into();
        let tol = tolerance(dtype);
        let on_ref = prepare(&spec, &reference)?;
        let on_dev = prepare(&spec, &device)?;
        let r = compute(&config, &on_ref.set, dtype, &reference)
            .with_context(|| format!("{} on the reference {}", dtype_name(dtype), a.reference))?;
        let d = compute(&config, &on_dev.set, dtype, &device)
            .with_context(|| format!("{} on {}", dtype_name(dtype), a.device))?;
        for ((name, x), (_, y)) in d.quantities.iter().zip(&r.quantities) {
            let c = compare(x, y, tol);
            rows += 1;
            let verdict = match (c.pass, c.all_finite) {
                (true, _) => "PASS",
                (false, false) => "FAIL (non-finite)",
                (false, true) => "FAIL",
            };
            println!(
                "{:<5} {:<11} {:>8} {:>12.3e} {:>10.0e}  {verdict}",
                dtype_name(dtype),
                name,
                x.len(),
                c.rel_error,
                tol
            );
            if !c.pass {
                failed.push(format!("{} {name}", dtype_name(dtype)));
            }
            json_rows.push(JsonRow {
                dtype: dtype_name(dtype),
                quantity: name,
                values: x.len(),
                rel_error: c.rel_error,
                tolerance: tol,
                all_finite: c.all_finite,
                pass: c.pass,
            });
        }
        timings.push((dtype, d.seconds, r.seconds));
    }
    println!();
    for &(dtype, dev_s, ref_s) in &timings {
        println!(
            "gpu-check: {} all quantities: {:.3} s on {}, {:.3} s on {} (includes first-use set-up)",
            dtype_name(dtype),
            dev_s,
            a.device,
            ref_s,
            a.reference
        );
    }
    if let Some(path) = &a.json {
        let doc = serde_json::json!({
            "device": describe(&device),
            "reference": describe(&reference),
            "seed": seed,
            "nc": a.nc,
            "widths": widths,
            "pass": failed.is_empty(),
            "rows": json_rows,
            "seconds": timings.iter().map(|(d, dev_s, ref_s)| serde_json::json!({
                "dtype": dtype_name(*d), "device": dev_s, "reference": ref_s,
            })).collect::<Vec<_>>(),
        });
        crate::output::write_json(path, &doc)
            .with_context(|| format!("--json {}", path.display()))?;
    }
    if failed.is_empty() {
        println!("gpu-check: PASS ({rows} of {rows} comparisons)");
        Ok(())
    } else {
        bail!(
            "gpu-check: FAIL: {} of {rows} comparisons out of tolerance or non-finite: {} (seed {seed})",
            failed.len(),
            failed.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_catches_errors_nan_and_length_mismatch() {
        let b = [1.0, -2.0, 4.0];
        assert!(compare(&b, &b, 0.0).pass);
        let c = compare(&[1.0, -2.0, 4.0 + 4e-4], &b, 1e-4);
        assert!((c.rel_error - 1e-4).abs() < 1e-12);
        let c = compare(&[1.0, -2.0, 4.0 + 8e-4], &b, 1e-4);
        assert!(!c.pass && c.all_finite, "{c:?}");
        let c = compare(&[1.0, f64::NAN, 4.0], &b, 1.0);
        assert!(
            !c.pass && !c.all_finite,
            "a NaN must fail whatever the tolerance"
        );
        assert!(!compare(&[1.0, 2.0], &b, 1.0).pass);
        assert!(!compare(&[], &[], 1.0).pass);
        // All zeros on the reference side: absolute error.
        assert!(compare(&[0.0, 1e-12], &[0.0, 0.0], 1e-10).pass);
        assert!(!compare(&[0.0, 1e-9], &[0.0, 0.0], 1e-10).pass);
    }

    #[test]
    fn tolerances_follow_the_issue() {
        assert_eq!(tolerance(DType::F64), 1e-10);
        assert_eq!(tolerance(DType::F32), 1e-4);
    }
}
