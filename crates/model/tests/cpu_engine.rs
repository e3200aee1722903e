//! The hand-written CPU engine against candle autograd over the jets (the reference), against
//! itself in f32 and with two threads, and against central finite differences.

use mspinn_model::cpu_engine::{CpuEngine, Rows};
use mspinn_model::evaluator::{CandleEvaluator, CpuEvaluator, Evaluator};
use mspinn_model::fixture::{self, Fixture};
use mspinn_model::{Activation, DType, Device, EngineOptions, Gradient, Mlp, Real, ResidualSet};

const ACTS: [Activation; 3] = [Activation::Tanh, Activation::Sin, Activation::Softplus];

/// Darcy rows (ε = 1/8, λ = 5) at n equispaced points (one point: x = 0.3) plus the two boundary
/// rows when `bc`.
fn darcy_set(n: usize, bc: bool, dtype: DType) -> ResidualSet {
    let f = Fixture::new("twoscale-darcy")
        .eps(1.0 / 8.0)
        .lambda(5.0)
        .dtype(dtype);
    let f = if n == 1 { f.at(&[0.3]) } else { f.endpoints(n) };
    let f = if bc { f } else { f.no_boundary() };
    f.set().unwrap()
}

/// The same set with the loss weight of every third row set to zero.
fn zero_some_weights(set: &ResidualSet) -> ResidualSet {
    let mut w = set.host_w.clone();
    for (i, v) in w.iter_mut().enumerate() {
        if i % 3 == 1 {
            *v = 0.0;
        }
    }
    set.with_weights(w).unwrap()
}

fn net(hidden: Vec<usize>, act: Activation, dtype: DType, seed: u64) -> Mlp {
    fixture::net(&hidden, act, seed, dtype).unwrap()
}

fn opts(tile: usize, threads: usize) -> EngineOptions {
    EngineOptions { tile, threads }
}

/// ∇L through an evaluator, in f64.
fn gradient(ev: &mut dyn Evaluator, mlp: &Mlp, set: &ResidualSet) -> Vec<f64> {
    let mut g = Gradient::default();
    ev.loss_and_grad(mlp, set, &mut g).unwrap();
    g.to_f64().unwrap()
}

fn rel(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / scale.max(f64::MIN_POSITIVE)
}

/// The CPU evaluator (tile 16 so N is split unevenly) against the candle evaluator (autograd).
fn compare(mlp: &Mlp, set: &ResidualSet, tol: f64) {
    let mut cpu = CpuEvaluator::new(mlp, opts(16, 1)).unwrap();
    let mut candle = CandleEvaluator::new(mlp);
    let (mut ge, mut gr) = (Gradient::default(), Gradient::default());
    let et = cpu.loss_and_grad(mlp, set, &mut ge).unwrap();
    let rt = candle.loss_and_grad(mlp, set, &mut gr).unwrap();
    let what = format!(
        "{:?} {:?} N={}",
        mlp.config().hidden,
        mlp.activation(),
        set.len()
    );
    assert!(
        rel(et.total, rt.total, rt.total.abs()) <= tol,
        "{what}: total {} vs {}",
        et.total,
        rt.total
    );
    assert!(
        rel(et.pde, rt.pde, rt.total.abs()) <= tol,
        "{what}: pde {} vs {}",
        et.pde,
        rt.pde
    );
    assert!(
        rel(et.bc, rt.bc, rt.total.abs()) <= tol,
        "{what}: bc {} vs {}",
        et.bc,
        rt.bc
    );
    let ge = ge.to_f64().unwrap();
    let gr = gr.to_f64().unwrap();
    assert_eq!(ge.len(), gr.len(), "{what}: gradient lengths");
    let scale = gr.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(scale > 0.0);
    for (j, (a, b)) in ge.iter().zip(&gr).enumerate() {
        assert!(
            rel(*a, *b, scale) <= tol,
            "{what}: dθ[{j}] {a} vs {b} (scale {scale})"
        );
    }
    // Loss alone is the same forward pass as the loss of loss_and_grad: the same bits.
    let lo = cpu.loss(mlp, set).unwrap();
    assert_eq!(lo, et, "{what}: loss alone");
}

#[test]
fn engine_matches_candle_autograd_f64() {
    for act in ACTS {
        for hidden in [
            vec![7],
            vec![1],
            vec![40],
            vec![7, 40],
            vec![40, 1],
            vec![40, 7, 1, 40],
            vec![7, 7, 7, 7],
        ] {
            for (n, bc) in [(1, false), (37, true), (37, false), (1000, true)] {
                let set = darcy_set(n, bc, DType::F64);
                let mlp = net(hidden.clone(), act, DType::F64, 3 + n as u64);
                compare(&mlp, &set, 1e-12);
                if n > 1 {
                    compare(&mlp, &zero_some_weights(&set), 1e-12);
                }
            }
        }
    }
}

#[test]
fn engine_matches_autograd_for_poisson_and_regression() {
    for preset in ["twoscale-poisson", "twoscale-regression"] {
        let set = Fixture::new(preset)
            .eps(1.0 / 8.0)
            .endpoints(300)
            .lambda(2.0)
            .set()
            .unwrap();
        compare(
            &net(vec![40, 40, 40, 40], Activation::Tanh, DType::F64, 1),
            &set,
            1e-12,
        );
    }
}

/// The network's parameters and the set's columns as host vectors, to drive the engine directly.
struct HostInputs<T> {
    w: Vec<Vec<T>>,
    b: Vec<Vec<T>>,
    cols: Vec<Vec<T>>,
    n_pde: usize,
}

impl<T: Real> HostInputs<T> {
    fn new(mlp: &Mlp, set: &ResidualSet) -> Self {
        let v = |t: &candle_core::Tensor| -> Vec<T> {
            t.flatten_all().unwrap().to_vec1::<T>().unwrap()
        };
        let nl = mlp.num_layers();
        Self {
            w: (0..nl).map(|l| v(mlp.weight(l).as_tensor())).collect(),
            b: (0..nl).map(|l| v(mlp.bias(l).as_tensor())).collect(),
            cols: [&set.x, &set.c0, &set.c1, &set.c2, &set.g, &set.w]
                .into_iter()
                .map(v)
                .collect(),
            n_pde: set.n_pde,
        }
    }
    fn rows(&self) -> Rows<'_, T> {
        let c = &self.cols;
        Rows {
            x: &c[0],
            c0: &c[1],
            c1: &c[2],
            c2: &c[3],
            g: &c[4],
            w: &c[5],
            n_pde: self.n_pde,
        }
    }
    fn weights(&self) -> Vec<&[T]> {
        self.w.iter().map(|x| &x[..]).collect()
    }
    fn biases(&self) -> Vec<&[T]> {
        self.b.iter().map(|x| &x[..]).collect()
    }
}

/// The engine driven directly, for explicit tile and thread counts.
fn run_engine<T: Real>(
    mlp: &Mlp,
    set: &ResidualSet,
    opts: EngineOptions,
) -> (mspinn_model::LossTerms, Vec<T>) {
    let h = HostInputs::<T>::new(mlp, set);
    let mut e = CpuEngine::<T>::new(&mlp.config().dims(), mlp.activation(), opts).unwrap();
    let mut g = vec![T::default(); mlp.num_params()];
    let terms = e
        .run(&h.weights(), &h.biases(), &h.rows(), Some(&mut g))
        .unwrap();
    (terms, g)
}

#[test]
fn f32_engine_tracks_f64_engine() {
    for act in ACTS {
        let m64 = net(vec![40, 40, 40, 40], act, DType::F64, 7);
        let m32 = m64.to(DType::F32, &Device::Cpu).unwrap();
        let s64 = darcy_set(1000, true, DType::F64);
        let s32 = darcy_set(1000, true, DType::F32);
        let opts = EngineOptions {
            tile: 128,
            threads: 1,
        };
        let (t64, g64) = run_engine::<f64>(&m64, &s64, opts);
        let (t32, g32) = run_engine::<f32>(&m32, &s32, opts);
        assert!(
            rel(t32.total, t64.total, t64.total) < 1e-5,
            "{act:?}: {} vs {}",
            t32.total,
            t64.total
        );
        let scale = g64.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (j, (a, b)) in g32.iter().zip(&g64).enumerate() {
            assert!(
                rel(*a as f64, *b, scale) < 1e-4,
                "{act:?} dθ[{j}]: {a} vs {b} (scale {scale})"
            );
        }
        // And through the evaluator (the f32 path), bit for bit the engine's.
        let mut ev = CpuEvaluator::new(&m32, opts).unwrap();
        let via = gradient(&mut ev, &m32, &s32);
        assert!(via.iter().zip(&g32).all(|(a, b)| *a == f64::from(*b)));
    }
}

#[test]
fn gradient_matches_central_differences() {
    let set = darcy_set(64, true, DType::F64);
    for act in ACTS {
        let mlp = net(vec![6, 5], act, DType::F64, 9);
        let theta = mlp.flat_params().unwrap();
        let mut ev = CpuEvaluator::new(&mlp, EngineOptions::default()).unwrap();
        let g = gradient(&mut ev, &mlp, &set);
        let gmax = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for j in 0..theta.len() {
            let h = 1e-6 * (1.0 + theta[j].abs());
            let mut t = theta.clone();
            t[j] = theta[j] + h;
            mlp.set_flat_params(&t).unwrap();
            let lp = ev.loss(&mlp, &set).unwrap().total;
            t[j] = theta[j] - h;
            mlp.set_flat_params(&t).unwrap();
            let lm = ev.loss(&mlp, &set).unwrap().total;
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (g[j] - fd).abs() <= 1e-6 * gmax,
                "{act:?} component {j}: {} vs {fd}",
                g[j]
            );
        }
        mlp.set_flat_params(&theta).unwrap();
    }
}

#[test]
fn deterministic_for_a_given_thread_count() {
    let mlp = net(vec![40, 40, 40, 40], Activation::Tanh, DType::F64, 4);
    let set = darcy_set(3001, true, DType::F64);
    for threads in [1, 2] {
        let opts = EngineOptions { tile: 64, threads };
        let (t1, g1) = run_engine::<f64>(&mlp, &set, opts);
        let (t2, g2) = run_engine::<f64>(&mlp, &set, opts);
        assert_eq!(t1, t2);
        assert!(
            g1.iter().zip(&g2).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads} threads"
        );
    }
    // Two threads agree with one to rounding (the sums are split differently).
    let (t1, g1) = run_engine::<f64>(
        &mlp,
        &set,
        EngineOptions {
            tile: 64,
            threads: 1,
        },
    );
    let (t2, g2) = run_engine::<f64>(
        &mlp,
        &set,
        EngineOptions {
            tile: 64,
            threads: 2,
        },
    );
    assert!(rel(t1.total, t2.total, t1.total) < 1e-13);
    let scale = g1.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(g1.iter().zip(&g2).all(|(a, b)| rel(*a, *b, scale) < 1e-13));
    // Tile size changes only the rounding too.
    let (t3, _) = run_engine::<f64>(
        &mlp,
        &set,
        EngineOptions {
            tile: 1000,
            threads: 1,
        },
    );
    assert!(rel(t1.total, t3.total, t1.total) < 1e-13);
}

#[test]
fn bad_buffers_are_errors_not_panics() {
    let mut e = CpuEngine::<f64>::new(
        &[1, 4, 1],
        Activation::Tanh,
        EngineOptions {
            tile: 8,
            threads: 1,
        },
    )
    .unwrap();
    let x = [0.0; 3];
    let rows = Rows {
        x: &x,
        c0: &x,
        c1: &x,
        c2: &x[..2],
        g: &x,
        w: &x,
        n_pde: 3,
    };
    let w = [&[0.0; 4][..], &[0.0; 4][..]];
    let b = [&[0.0; 4][..], &[0.0; 1][..]];
    assert!(e.run(&w, &b, &rows, None).is_err());
    assert!(CpuEngine::<f64>::new(
        &[1, 0, 1],
        Activation::Tanh,
        EngineOptions {
            tile: 8,
            threads: 1
        }
    )
    .is_err());
}

/// The engine's Jacobian driven directly (a wrong-sized buffer must be an error).
fn engine_jacobian(mlp: &Mlp, set: &ResidualSet, opts: EngineOptions) -> Vec<f64> {
    let h = HostInputs::<f64>::new(mlp, set);
    let (w, b, rows) = (h.weights(), h.biases(), h.rows());
    let mut e = CpuEngine::<f64>::new(&mlp.config().dims(), mlp.activation(), opts).unwrap();
    let mut j = vec![f64::NAN; set.len() * mlp.num_params()];
    e.jacobian(&w, &b, &rows, &mut j).unwrap();
    assert!(e.jacobian(&w, &b, &rows, &mut j[1..]).is_err());
    j
}

/// Σ_i w_i r_i ∂r_i/∂θ is ∂L/∂θ: the Jacobian rows checked against the engine's gradient
/// (itself checked against candle autograd and finite differences above), for uneven tiles and
/// both thread counts, which must give bit-identical rows (each row is computed alone).
#[test]
fn jacobian_rows_sum_to_the_gradient() {
    for act in ACTS {
        for hidden in [vec![7], vec![40, 40, 40, 40], vec![40, 7, 1, 40]] {
            let mlp = net(hidden.clone(), act, DType::F64, 21);
            let set = zero_some_weights(&darcy_set(301, true, DType::F64));
            let (n, np) = (set.len(), mlp.num_params());
            let j = engine_jacobian(&mlp, &set, opts(16, 1));
            assert!(j.iter().all(|v| v.is_finite()), "every entry written");
            for o in [opts(16, 2), opts(128, 1), opts(7, 2)] {
                let j2 = engine_jacobian(&mlp, &set, o);
                assert!(
                    j.iter().zip(&j2).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{hidden:?} {act:?}: {o:?} changed J"
                );
            }
            // r from the network's jets, independently of the engine.
            let jets = mlp.jets(&set.x).unwrap();
            let col = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let (u, du, d2u) = (col(&jets.u), col(&jets.du), col(&jets.d2u));
            let (c0, c1, c2, g) = (col(&set.c0), col(&set.c1), col(&set.c2), col(&set.g));
            let mut grad = vec![0.0; np];
            for i in 0..n {
                let r = c2[i] * d2u[i] + c1[i] * du[i] + c0[i] * u[i] - g[i];
                let wr = set.host_w[i] * r;
                for (a, jv) in grad.iter_mut().zip(&j[i * np..(i + 1) * np]) {
                    *a += wr * jv;
                }
            }
            let mut ev = CpuEvaluator::new(&mlp, EngineOptions::default()).unwrap();
            let want = gradient(&mut ev, &mlp, &set);
            let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (k, (a, b)) in grad.iter().zip(&want).enumerate() {
                assert!(
                    rel(*a, *b, scale) <= 1e-11,
                    "{hidden:?} {act:?} dθ[{k}]: Σ w r J = {a} vs ∇L = {b}"
                );
            }
        }
    }
}

/// A range of rows through the CPU evaluator is the same block of the full Jacobian (as a tensor
/// and in the f64 buffer LM uses), in f32 as in f64 (to f32 rounding); a range past the end is
/// an error.
#[test]
fn jacobian_of_a_row_range_is_a_block_of_the_full_one() {
    let mlp = net(vec![40, 40], Activation::Tanh, DType::F64, 5);
    let set = darcy_set(200, true, DType::F64);
    let np = mlp.num_params();
    let mut ev = CpuEvaluator::new(&mlp, EngineOptions::default()).unwrap();
    let flat = |t: candle_core::Tensor| -> Vec<f64> {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let full = flat(ev.jacobian(&mlp, &set, 0..set.len()).unwrap());
    // Rows 150..202 cross from the PDE rows into the two boundary rows.
    let part = flat(ev.jacobian(&mlp, &set, 150..202).unwrap());
    assert_eq!(part, full[150 * np..202 * np]);
    let mut buf = vec![f64::NAN; 3];
    ev.jacobian_f64(&mlp, &set, 150..202, &mut buf).unwrap();
    assert_eq!(buf, part);
    assert!(ev.jacobian(&mlp, &set, 150..203).is_err());
    let m32 = mlp.to(DType::F32, &Device::Cpu).unwrap();
    let s32 = darcy_set(200, true, DType::F32);
    let mut ev32 = CpuEvaluator::new(&m32, EngineOptions::default()).unwrap();
    let j32 = flat(ev32.jacobian(&m32, &s32, 0..s32.len()).unwrap());
    let scale = full.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(j32
        .iter()
        .zip(&full)
        .all(|(a, b)| (a - b).abs() <= 1e-4 * scale));
    // The evaluator refuses a network it was not built for.
    assert!(ev.loss(&m32, &s32).is_err());
}
