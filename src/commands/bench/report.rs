//! The bench document (bench.json), its CSV (bench.csv), the printed tables and the
//! side-by-side comparison of two devices.

use std::fmt::Write as _;

use serde::Serialize;

use crate::output::BuildInfo;

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

pub fn cpu_model() -> String {
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

/// Rows measured on both devices, and per (measure, dtype) the crossover N_c.
pub fn compare(
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
