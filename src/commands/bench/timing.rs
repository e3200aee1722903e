//! Timing: warm-up, repetitions of enough inner calls to last ≥ 20 ms, median and minimum;
//! and the peak gemm the other rows are a percentage of.

use std::time::{Duration, Instant};

use anyhow::Result;
use candle_core::{DType, Device, Tensor};

use super::report::BenchRecord;
use crate::args::dtype_name;

/// How long to measure: set by --quick and --reps.
#[derive(Clone, Copy)]
pub struct Plan {
    pub reps: usize,
    pub warmup: Duration,
    pub min_rep: Duration,
    /// Past this much time per measurement, fewer repetitions (never below 3).
    pub budget: Duration,
}

pub struct Timing {
    reps: usize,
    inner: usize,
    median: f64,
    min: f64,
}

/// Warm-up, then `reps` repetitions of `inner` calls; per-call seconds.
pub fn time_calls(plan: &Plan, dev: &Device, f: &mut dyn FnMut() -> Result<()>) -> Result<Timing> {
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

pub fn record(
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

pub fn gemm_candle(n: usize, dtype: DType, dev: &Device, plan: &Plan) -> Result<Timing> {
    let a = Tensor::randn(0f64, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f64, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    time_calls(plan, dev, &mut || {
        let c = a.matmul(&b)?;
        drop(c);
        Ok(())
    })
}

pub fn gemm_faer<T: faer::traits::ComplexField + From<f32> + Copy>(
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
