//! The hand-written CPU engine against candle autograd over the jets (the reference), against
//! itself in f32 and with two threads, and against central finite differences.

use mspinn_model::cpu_engine::{CpuEngine, EngineOptions, Rows};
use mspinn_model::{Activation, DType, Device, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{collocation, LinearResidual, PointSpec, Problem};

const ACTS: [Activation; 3] = [Activation::Tanh, Activation::Sin, Activation::Softplus];

/// Darcy rows at n points (n ≥ 1) plus the two boundary rows when `bc`; with `zero_w`, every
/// third PDE row gets weight 0 (through the host copy the engine sees).
fn darcy_set(n: usize, bc: bool, dtype: DType) -> ResidualSet {
    let p = Problem::preset("twoscale-darcy", Some(1.0 / 8.0)).unwrap();
    let x = if n == 1 {
        vec![0.3]
    } else {
        collocation(p.domain, PointSpec::Endpoints(n)).unwrap()
    };
    let pde = p.pde_rows(&x).unwrap();
    let b = if bc {
        p.boundary_rows()
    } else {
        LinearResidual {
            x: vec![],
            c0: vec![],
            c1: vec![],
            c2: vec![],
            g: vec![],
        }
    };
    ResidualSet::new(&pde, &b, 5.0, dtype, &Device::Cpu).unwrap()
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
    Mlp::new(
        MlpConfig::new(hidden, act, Init::GlorotNormal, seed),
        dtype,
        &Device::Cpu,
    )
    .unwrap()
}

fn rel(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / scale.max(f64::MIN_POSITIVE)
}

/// Engine (through Mlp::loss_and_grad, tile 16 so N is split unevenly) against candle autograd.
fn compare(mlp: &Mlp, set: &ResidualSet, tol: f64) {
    let reference = mlp.loss_and_grad_autograd(set).unwrap();
    let engine = mlp.loss_and_grad(set).unwrap();
    let (rt, et) = (reference.terms, engine.terms);
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
    assert_eq!(engine.grads.len(), reference.grads.len());
    for (ge, gr) in engine.grads.iter().zip(&reference.grads) {
        assert_eq!(ge.dims(), gr.dims(), "{what}: gradient shapes");
    }
    let ge = engine.flat_grad().unwrap();
    let gr = reference.flat_grad().unwrap();
    let scale = gr.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(scale > 0.0);
    for (j, (a, b)) in ge.iter().zip(&gr).enumerate() {
        assert!(
            rel(*a, *b, scale) <= tol,
            "{what}: dθ[{j}] {a} vs {b} (scale {scale})"
        );
    }
    // Loss alone agrees with the loss of loss_and_grad (to rounding: another test may change the
    // default tile size in between).
    let lo = mlp.loss(set).unwrap();
    assert!(
        rel(lo.total, et.total, et.total.abs()) <= 1e-14,
        "{what}: loss alone {lo:?} vs {et:?}"
    );
}

#[test]
fn engine_matches_candle_autograd_f64() {
    mspinn_model::cpu_engine::set_default_options(EngineOptions {
        tile: 16,
        threads: 1,
    });
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
        let p = Problem::preset(preset, Some(1.0 / 8.0)).unwrap();
        let x = collocation(p.domain, PointSpec::Endpoints(300)).unwrap();
        let set = ResidualSet::new(
            &p.pde_rows(&x).unwrap(),
            &p.boundary_rows(),
            2.0,
            DType::F64,
            &Device::Cpu,
        )
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

impl<T: mspinn_model::cpu_engine::Real> HostInputs<T> {
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
fn run_engine<T: mspinn_model::cpu_engine::Real>(
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
        // And through Mlp (the f32 dispatch).
        let via = m32.loss_and_grad(&s32).unwrap().flat_grad().unwrap();
        assert_eq!(via.len(), g64.len());
    }
}

#[test]
fn gradient_matches_central_differences() {
    let set = darcy_set(64, true, DType::F64);
    for act in ACTS {
        let mlp = net(vec![6, 5], act, DType::F64, 9);
        let theta = mlp.flat_params().unwrap();
        let g = mlp.loss_and_grad(&set).unwrap().flat_grad().unwrap();
        let gmax = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for j in 0..theta.len() {
            let h = 1e-6 * (1.0 + theta[j].abs());
            let mut t = theta.clone();
            t[j] = theta[j] + h;
            mlp.set_flat_params(&t).unwrap();
            let lp = mlp.loss(&set).unwrap().total;
            t[j] = theta[j] - h;
            mlp.set_flat_params(&t).unwrap();
            let lm = mlp.loss(&set).unwrap().total;
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
            let opts = |tile, threads| EngineOptions { tile, threads };
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
            let want = mlp.loss_and_grad(&set).unwrap().flat_grad().unwrap();
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

/// A range of rows through `cpu_engine::jacobian` is the same block of the full Jacobian, in
/// f32 as in f64 (to f32 rounding).
#[test]
fn jacobian_of_a_row_range_is_a_block_of_the_full_one() {
    let mlp = net(vec![40, 40], Activation::Tanh, DType::F64, 5);
    let set = darcy_set(200, true, DType::F64);
    let np = mlp.num_params();
    let full = match mspinn_model::cpu_engine::jacobian(&mlp, &set, 0, set.len()).unwrap() {
        Some(mspinn_model::FlatGrad::F64(j)) => j,
        other => panic!("expected f64 rows, got {other:?}"),
    };
    // Rows 150..202 cross from the PDE rows into the two boundary rows.
    let part = mspinn_model::cpu_engine::jacobian(&mlp, &set, 150, 52)
        .unwrap()
        .unwrap()
        .into_f64();
    assert_eq!(part, full[150 * np..202 * np]);
    assert!(mspinn_model::cpu_engine::jacobian(&mlp, &set, 150, 53).is_err());
    let m32 = mlp.to(DType::F32, &Device::Cpu).unwrap();
    let s32 = darcy_set(200, true, DType::F32);
    let j32 = mspinn_model::cpu_engine::jacobian(&m32, &s32, 0, s32.len())
        .unwrap()
        .unwrap()
        .into_f64();
    let scale = full.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(j32
        .iter()
        .zip(&full)
        .all(|(a, b)| (a - b).abs() <= 1e-4 * scale));
}
