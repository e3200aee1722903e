//! Adam step time on the Fig. 4 Darcy PINN (4×40 tanh, ε = 1/32): candle autograd + candle-op
//! Adam (the old path) against the CPU engine + host Adam, alternating in one process, with the
//! step's FLOP count and a large-gemm peak from the same run.
//!
//! ```text
//! cargo run --release -p mspinn-train --example adam_step [-- --sizes 256,1024 --rounds 5 --tiles]
//! ```
//!
//! FLOP count of one step (matmul flops of the jet network, dims d_0 = 1, …, d_{L+1} = 1):
//! forward 3·2·Σ_{l≥1} d_l d_{l+1} per row (three streams through every layer after the first),
//! backward twice that (∂L/∂W = Z̄ᵀH and H̄ = Z̄W), so F = 18 N Σ_{l≥1} d_l d_{l+1}
//! (4×40: 87 120 per row). Layer 0 and the elementwise jet work (~100 flops per hidden unit per
//! row with tanh) are left out, as is usual for "% of gemm peak".

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use mspinn_model::evaluator::{CandleEvaluator, CpuEvaluator, Evaluator};
use mspinn_model::{
    Activation, EngineOptions, Gradient, Init, Mlp, MlpConfig, ResidualSet, DEFAULT_TILE,
};
use mspinn_train::Adam;

fn set(n: usize, dtype: DType) -> ResidualSet {
    mspinn_model::fixture::Fixture::new("twoscale-darcy")
        .eps(1.0 / 32.0)
        .endpoints(n)
        .lambda(100.0)
        .dtype(dtype)
        .set()
        .unwrap()
}

/// The pre-engine step: candle autograd and Adam as candle ops (the old adam.rs, verbatim).
struct OldStep {
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: i32,
}

impl OldStep {
    fn new(mlp: &Mlp) -> Self {
        let vars = mlp.vars();
        let m: Vec<Tensor> = vars
            .iter()
            .map(|v| v.as_tensor().zeros_like().unwrap())
            .collect();
        Self {
            vars,
            v: m.clone(),
            m,
            t: 0,
        }
    }
    fn step(&mut self, mlp: &Mlp, set: &ResidualSet, lr: f64) -> f64 {
        let mut grad = Gradient::default();
        let terms = CandleEvaluator::new(mlp)
            .loss_and_grad(mlp, set, &mut grad)
            .unwrap();
        let Gradient::Device(grads) = grad else {
            unreachable!("candle's gradient is one tensor per variable")
        };
        self.t += 1;
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        let sm = 1.0 / (1.0 - f64::powi(b1, self.t));
        let sv = 1.0 / (1.0 - f64::powi(b2, self.t));
        for (k, (var, g)) in self.vars.iter().zip(&grads).enumerate() {
            let m = ((&self.m[k] * b1).unwrap() + (g * (1.0 - b1)).unwrap()).unwrap();
            let v =
                ((&self.v[k] * b2).unwrap() + (g.sqr().unwrap() * (1.0 - b2)).unwrap()).unwrap();
            let mh = (&m * sm).unwrap();
            let vh = (&v * sv).unwrap();
            let next = (var.as_tensor()
                - ((mh * lr).unwrap() / (vh.sqrt().unwrap() + eps).unwrap()).unwrap())
            .unwrap();
            var.set(&next).unwrap();
            self.m[k] = m;
            self.v[k] = v;
        }
        terms.total
    }
}

struct NewStep {
    adam: Adam,
    engine: CpuEvaluator,
    grad: Gradient,
}

impl NewStep {
    fn new(mlp: &Mlp, opts: EngineOptions) -> Self {
        Self {
            adam: Adam::new(mlp.vars()).unwrap(),
            engine: CpuEvaluator::new(mlp, opts).unwrap(),
            grad: Gradient::default(),
        }
    }
    fn step(&mut self, mlp: &Mlp, set: &ResidualSet, lr: f64) -> f64 {
        let t = self.engine.loss_and_grad(mlp, set, &mut self.grad).unwrap();
        self.adam.step_with(&self.grad, lr).unwrap();
        t.total
    }
}

/// This thread's CPU time in seconds (from /proc/thread-self/schedstat, ns resolution): on a
/// shared, oversubscribed machine the wall time of a single-threaded loop mostly measures the
/// other tenants; its CPU time does not. NaN where the file is missing.
fn cpu_time() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

/// (wall, CPU) seconds per call of `f`, `reps` calls.
fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    let (w, c) = (Instant::now(), cpu_time());
    for _ in 0..reps {
        f();
    }
    (
        w.elapsed().as_secs_f64() / reps as f64,
        (cpu_time() - c) / reps as f64,
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn gemm_peak(dtype: DType, n: usize, par: faer::Par) -> f64 {
    fn run<T: faer::traits::ComplexField + Copy>(n: usize, one: T, par: faer::Par) -> f64 {
        let a = faer::Mat::<T>::from_fn(n, n, |_, _| one);
        let b = a.clone();
        let mut c = faer::Mat::<T>::zeros(n, n);
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let (w, c1) = time(1, || {
                faer::linalg::matmul::matmul(
                    c.as_mut(),
                    faer::Accum::Replace,
                    a.as_ref(),
                    b.as_ref(),
                    one,
                    par,
                )
            });
            // One thread: CPU time; more: wall time.
            best = best.min(if par.degree() == 1 && c1.is_finite() {
                c1
            } else {
                w
            });
        }
        2.0 * (n as f64).powi(3) / best / 1e9
    }
    match dtype {
        DType::F32 => run::<f32>(n, 1.0, par),
        _ => run::<f64>(n, 1.0, par),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = get("--sizes")
        .map(|s| s.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or(vec![256, 1024, 4096, 16384, 65536]);
    let rounds: usize = get("--rounds").map(|s| s.parse().unwrap()).unwrap_or(5);
    let dtypes: Vec<DType> = match get("--dtype").as_deref() {
        Some("f32") => vec![DType::F32],
        Some("f64") => vec![DType::F64],
        _ => vec![DType::F32, DType::F64],
    };
    let skip_old = args.iter().any(|a| a == "--no-old");
    // The old path as the CLI runs it (one matmul thread, see src/main.rs); the engine's
    // two-thread variant gets a pool of its own.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let pool2 = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let cfg = MlpConfig::new(vec![40; 4], Activation::Tanh, Init::GlorotNormal, 1);
    let dims = cfg.dims();
    let per_row: usize = 18 * dims[1..].windows(2).map(|w| w[0] * w[1]).sum::<usize>();
    println!("flops per row (18 Σ d_l d_l+1) = {per_row}");

    // --profile STEPS: only new steps (for callgrind / perf), at the first size and dtype.
    if let Some(steps) = get("--profile").map(|s| s.parse::<usize>().unwrap()) {
        let (dt, n) = (dtypes[0], sizes[0]);
        let s = set(n, dt);
        let mlp = Mlp::new(cfg.clone(), dt, &Device::Cpu).unwrap();
        let mut new = NewStep::new(&mlp, EngineOptions::default());
        let t = Instant::now();
        let mut l = 0.0;
        for _ in 0..steps {
            l = new.step(&mlp, &s, 1e-3);
        }
        println!(
            "{dt:?} N={n}: {:.3} ms/step, loss {l:e}",
            t.elapsed().as_secs_f64() * 1e3 / steps as f64
        );
        return;
    }

    if args.iter().any(|a| a == "--tiles") {
        for &dt in &dtypes {
            for &n in &sizes {
                let s = set(n, dt);
                let mlp = Mlp::new(cfg.clone(), dt, &Device::Cpu).unwrap();
                let mut grad = Gradient::default();
                let tiles = [32, 64, 128, 256, 512, 1024];
                let mut times = vec![Vec::new(); tiles.len()];
                for _ in 0..rounds {
                    for (k, &tile) in tiles.iter().enumerate() {
                        let mut ev =
                            CpuEvaluator::new(&mlp, EngineOptions { tile, threads: 1 }).unwrap();
                        ev.loss_and_grad(&mlp, &s, &mut grad).unwrap();
                        let reps = (65536 / n).clamp(1, 64);
                        let (_, c) = time(reps, || {
                            ev.loss_and_grad(&mlp, &s, &mut grad).unwrap();
                        });
                        times[k].push(c);
                    }
                }
                let line: Vec<String> = tiles
                    .iter()
                    .zip(&mut times)
                    .map(|(t, v)| format!("tile {t}: {:.3} ms CPU", median(v) * 1e3))
                    .collect();
                println!("{dt:?} N={n}: {}", line.join(", "));
            }
        }
        return;
    }

    for &dt in &dtypes {
        let peak1 = gemm_peak(dt, 1024, faer::Par::Seq);
        let peak2 = pool2.install(|| gemm_peak(dt, 1024, faer::Par::rayon(2)));
        println!(
            "\n{dt:?}: gemm 1024³ peak: 1 thread {peak1:.1} GFLOP/s, 2 threads {peak2:.1} GFLOP/s"
        );
        println!("| N_c | old (candle) ms CPU | new 1 thr ms CPU (wall) | new 2 thr ms wall | speed-up 1 thr | GFLOP/s 1 thr | % of 1-thr peak | GFLOP/s 2 thr | % of 2-thr peak |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for &n in &sizes {
            let s = set(n, dt);
            let base = Mlp::new(cfg.clone(), dt, &Device::Cpu).unwrap();
            let (m_old, m_new1, m_new2) = (
                base.to(dt, &Device::Cpu).unwrap(),
                base.to(dt, &Device::Cpu).unwrap(),
                base.to(dt, &Device::Cpu).unwrap(),
            );
            let mut old = OldStep::new(&m_old);
            let opts1 = EngineOptions {
                tile: DEFAULT_TILE,
                threads: 1,
            };
            let opts2 = EngineOptions {
                tile: DEFAULT_TILE,
                threads: 2,
            };
            let mut new1 = NewStep::new(&m_new1, opts1);
            let mut new2 = NewStep::new(&m_new2, opts2);
            let lr = 1e-3;
            let reps_new = (131072 / n).clamp(2, 200);
            let reps_old = (16384 / n).clamp(1, 50);
            let (mut to, mut t1, mut t2, mut w1) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for r in 0..rounds + 1 {
                if !skip_old {
                    let (_, c) = time(reps_old, || {
                        old.step(&m_old, &s, lr);
                    });
                    if r > 0 {
                        to.push(c);
                    }
                }
                let (w, c) = time(reps_new, || {
                    new1.step(&m_new1, &s, lr);
                });
                if r > 0 {
                    t1.push(c);
                    w1.push(w);
                }
                let (w, _) = pool2.install(|| {
                    time(reps_new, || {
                        new2.step(&m_new2, &s, lr);
                    })
                });
                if r > 0 {
                    t2.push(w);
                }
            }
            let flops = (per_row * n) as f64;
            let (o, a, b, aw) = (
                if skip_old { f64::NAN } else { median(&mut to) },
                median(&mut t1),
                median(&mut t2),
                median(&mut w1),
            );
            println!(
                "| {n} | {:.3} | {:.3} ({:.3}) | {:.3} | {:.1}× | {:.1} | {:.0}% | {:.1} | {:.0}% |",
                o * 1e3,
                a * 1e3,
                aw * 1e3,
                b * 1e3,
                o / a,
                flops / a / 1e9,
                100.0 * flops / a / 1e9 / peak1,
                flops / b / 1e9,
                100.0 * flops / b / 1e9 / peak2,
            );
        }
    }
}
