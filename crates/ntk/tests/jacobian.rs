//! The per-sample Jacobian of both evaluators (the CPU engine's tiles, candle's batched sweep)
//! against per-row autograd, and the Gram path against the dense one.

use candle_core::{DType, Tensor};
use mspinn_model::evaluator::{self, CpuEvaluator, Evaluator};
use mspinn_model::fixture::{self, Fixture};
use mspinn_model::{Activation, Engine, EngineConfig, EngineOptions, Init, Mlp, ResidualSet};
use mspinn_ntk::{analyse, DenseNtk, Method, NtkOptions, Scaling};

fn set_for(preset: &str, eps: Option<f64>, n: usize, lambda: f64) -> ResidualSet {
    let f = Fixture::new(preset).midpoints(n).lambda(lambda);
    match eps {
        Some(e) => f.eps(e),
        None => f,
    }
    .set()
    .unwrap()
}

fn net(hidden: Vec<usize>, act: Activation) -> Mlp {
    fixture::net_with(&hidden, act, Init::Normal, 17, DType::F64).unwrap()
}

fn cpu(mlp: &Mlp) -> CpuEvaluator {
    CpuEvaluator::new(mlp, EngineOptions::default()).unwrap()
}

/// ∂r_i/∂θ by autograd on the single row i: the independent reference.
fn autograd_row(mlp: &Mlp, set: &ResidualSet, i: usize) -> Vec<f64> {
    let jets = mlp.jets(&set.x.narrow(0, i, 1).unwrap()).unwrap();
    let c = |t: &Tensor| t.narrow(0, i, 1).unwrap();
    let r = ((c(&set.c2) * &jets.d2u).unwrap() + (c(&set.c1) * &jets.du).unwrap()).unwrap();
    let r = (r + (c(&set.c0) * &jets.u).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = r.backward().unwrap();
    let mut out = Vec::new();
    for v in mlp.vars() {
        let g = match grads.get(v.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            None => vec![0.0; v.elem_count()],
        };
        out.extend(g);
    }
    out
}

fn check_rows(mlp: &Mlp, set: &ResidualSet) {
    // The GPU engine's kernels are tanh's (it refuses other activations).
    let gpu = (mlp.activation() == mspinn_model::Activation::Tanh).then_some(Engine::GpuHost);
    for engine in [Engine::Cpu, Engine::Candle].into_iter().chain(gpu) {
        let mut ev =
            evaluator::build(&EngineConfig::new(Some(engine), Default::default()), mlp).unwrap();
        let j = ev.jacobian(mlp, set, 0..set.len()).unwrap();
        assert_eq!(j.dims(), &[set.len(), mlp.num_params()]);
        let rows: Vec<Vec<f64>> = j.to_vec2().unwrap();
        for (i, row) in rows.iter().enumerate() {
            let want = autograd_row(mlp, set, i);
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (p, (a, b)) in row.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-10 * scale,
                    "{engine} row {i} param {p}: {a} vs autograd {b}"
                );
            }
        }
    }
}

#[test]
fn jacobian_rows_match_autograd_one_hidden_layer() {
    for act in [Activation::Tanh, Activation::Sin, Activation::Softplus] {
        let mlp = net(vec![9], act);
        check_rows(&mlp, &set_for("twoscale-darcy", Some(1.0 / 16.0), 12, 1.0));
        check_rows(
            &mlp,
            &set_for("twoscale-poisson", Some(1.0 / 16.0), 12, 1.0),
        );
    }
}

#[test]
fn jacobian_rows_match_autograd_three_hidden_layers() {
    let mlp = net(vec![7, 5, 6], Activation::Tanh);
    check_rows(&mlp, &set_for("twoscale-darcy", Some(1.0 / 16.0), 10, 1.0));
    check_rows(&mlp, &set_for("ntk-4.1", Some(1.0 / 20.0), 10, 1.0));
    check_rows(
        &mlp,
        &set_for("twoscale-poisson", Some(1.0 / 16.0), 10, 1.0),
    );
    let mlp = net(vec![7, 5, 6], Activation::Sin);
    check_rows(
        &mlp,
        &set_for("twoscale-regression", Some(1.0 / 16.0), 10, 0.0),
    );
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn gram_path_equals_dense_path() {
    // N_c = 300 > N_p = 3·20 + 21 = 81: both fit; Gram must give the same numbers.
    let mlp = net(vec![20], Activation::Tanh);
    let set = set_for("ntk-4.1", Some(1.0 / 30.0), 300, 3.0);
    for scaling in [Scaling::Appendix, Scaling::Unscaled] {
        let o = |method| NtkOptions {
            scaling,
            method,
            top_k: 10,
            full_spectrum: true,
            chunk_bytes: Some(40 * 81 * 8 * 4), // 40-row chunks: many of them
        };
        let (d, _) = analyse(&mut cpu(&mlp), &mlp, &set, &o(Method::Dense)).unwrap();
        let (g, _) = analyse(&mut cpu(&mlp), &mlp, &set, &o(Method::Gram)).unwrap();
        for (name, a, b) in [
            ("k_uu_fro", g.k_uu_fro, d.k_uu_fro),
            ("k_bb_fro", g.k_bb_fro, d.k_bb_fro),
            ("k_fro", g.k_fro, d.k_fro),
            ("k_uu_trace", g.k_uu_trace, d.k_uu_trace),
            ("k_uu_max_entry", g.k_uu_max_entry, d.k_uu_max_entry),
        ] {
            assert!(rel(a, b) <= 1e-9, "{scaling:?} {name}: gram {a} dense {b}");
        }
        assert_eq!(g.k_uu_rank, d.k_uu_rank);
        // Nonzero spectra agree where the eigenvalues are resolved (above 1e-6 λ_max; below
        // that both are only known to ~N u λ_max absolutely).
        for (gs, ds) in [
            (
                g.k_uu_spectrum.as_ref().unwrap(),
                d.k_uu_spectrum.as_ref().unwrap(),
            ),
            (
                g.k_spectrum.as_ref().unwrap(),
                d.k_spectrum.as_ref().unwrap(),
            ),
        ] {
            let top = ds[0];
            for (a, b) in gs.iter().zip(ds).take_while(|(_, b)| **b > 1e-6 * top) {
                assert!(rel(*a, *b) <= 1e-9, "eigenvalue gram {a} dense {b}");
            }
        }
    }
}

#[test]
fn dense_blocks_follow_the_appendix_scaling() {
    let mlp = net(vec![6], Activation::Tanh);
    let lambda = 5.0;
    let set = set_for("ntk-4.1", Some(1.0 / 10.0), 8, lambda);
    let j = cpu(&mlp).jacobian(&mlp, &set, 0..set.len()).unwrap();
    let d = DenseNtk::from_jacobian(&j, &set.host_w, set.n_pde).unwrap();
    let rows: Vec<Vec<f64>> = j.to_vec2().unwrap();
    let dot = |a: usize, b: usize| {
        rows[a]
            .iter()
            .zip(&rows[b])
            .map(|(x, y)| x * y)
            .sum::<f64>()
    };
    let (nc, nb) = (set.n_pde, set.n_bc);
    let k = d.k();
    for i in 0..nc + nb {
        for jj in 0..nc + nb {
            // K_uu: 1/N_c; K_ub: λ/N_b; K_bu: 1/N_c; K_bb: λ/N_b (appendix A).
            let w = if jj < nc {
                1.0 / nc as f64
            } else {
                lambda / nb as f64
            };
            let want = w * dot(i, jj);
            assert!((k[(i, jj)] - want).abs() <= 1e-12 * want.abs().max(1.0));
        }
    }
    // Eigenvalues of the non-symmetric K are those of the symmetrised matrix: check λ via
    // ‖K v − λ v‖ for the top eigenpair found by power iteration on K.
    let n = nc + nb;
    let mut v = vec![1.0; n];
    let mut lam = 0.0;
    for _ in 0..2000 {
        let kv: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| k[(i, j)] * v[j]).sum())
            .collect();
        let norm = kv.iter().map(|x| x * x).sum::<f64>().sqrt();
        lam = norm / v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = kv.iter().map(|x| x / norm).collect();
    }
    let top = d.k_spectrum(f64::EPSILON / 2.0).unwrap().max();
    assert!(
        rel(lam, top) < 1e-8,
        "power iteration {lam} vs symmetrised {top}"
    );
}
