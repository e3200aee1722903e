//! The NTK of a 2-D Darcy problem (issue 18): K_uu = J Jᵀ/N_c with the CPU engine's Jacobian
//! rows, against rows computed independently — per-row candle autograd over the candle jets,
//! and Richardson-extrapolated central differences of the residuals through the seam — to 1e-8.

use candle_core::{DType, Device, Tensor};
use mspinn_model::evaluator::{CpuEvaluator, Evaluator};
use mspinn_model::{Activation, EngineOptions, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_ntk::{analyse, Method, NtkOptions};
use mspinn_problem::{
    boundary_points, collocation_2d, Coefficient2d, PointSpec2d, Problem2d, Rect,
};

fn setup(eps: f64, n_side: usize) -> (Mlp, ResidualSet) {
    let rect = Rect::new([0.0, 1.0], [0.0, 1.0]).unwrap();
    let p = Problem2d::manufactured(
        rect,
        eps,
        Coefficient2d::oscillatory_2d().unwrap(),
        "sin(pi*x)*sin(pi*y) + eps*sin(pi*x)*sin(pi*y)*sin(2*pi*x/eps)*sin(2*pi*y/eps)",
    )
    .unwrap();
    let pts = collocation_2d(rect, PointSpec2d::Midpoints(n_side * n_side)).unwrap();
    let bpts = boundary_points(rect, 4 * n_side).unwrap();
    let set = ResidualSet::new_2d(
        &p.pde_rows(&pts).unwrap(),
        &p.boundary_rows(&bpts).unwrap(),
        1.0,
        DType::F64,
        &Device::Cpu,
    )
    .unwrap();
    let cfg =
        MlpConfig::new(vec![6, 6], Activation::Tanh, Init::GlorotNormal, 21).with_input_dim(2);
    (Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap(), set)
}

/// ∂r_i/∂θ by candle's autograd on row i alone (the candle d-dimensional jets).
fn autograd_row(mlp: &Mlp, set: &ResidualSet, i: usize) -> Vec<f64> {
    let jets = mlp.jets(&set.x.narrow(0, i, 1).unwrap()).unwrap();
    let c = |t: &Tensor| t.narrow(0, i, 1).unwrap();
    let r = ((c(&set.c2) * &jets.d2u).unwrap() + (c(&set.c1) * &jets.du).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let r = (r + (c(&set.c0) * &jets.u).unwrap().sum_all().unwrap()).unwrap();
    let grads = r.backward().unwrap();
    mlp.vars()
        .iter()
        .flat_map(|v| match grads.get(v.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            None => vec![0.0; v.elem_count()],
        })
        .collect()
}

#[test]
fn k_uu_in_2d_matches_independent_jacobian_rows_to_1e8() {
    let (mlp, set) = setup(0.25, 5);
    let (nc, n, np) = (set.n_pde, set.len(), mlp.num_params());
    let mut ev = CpuEvaluator::new(&mlp, EngineOptions::default()).unwrap();
    let mut j = Vec::new();
    ev.jacobian_f64(&mlp, &set, 0..n, &mut j).unwrap();

    // Rows by Richardson-extrapolated central differences of the residuals (forward only).
    let theta = mlp.flat_params().unwrap();
    let probe = mlp.clone();
    let mut probe_ev = CpuEvaluator::new(&probe, EngineOptions::default()).unwrap();
    let mut r_at = |th: &[f64]| -> Vec<f64> {
        probe.set_flat_params(th).unwrap();
        let mut r = Vec::new();
        probe_ev.residuals(&probe, &set, &mut r).unwrap();
        r
    };
    let mut jfd = vec![0.0; n * np];
    for p in 0..np {
        let mut central = |h: f64| -> Vec<f64> {
            let mut tp = theta.clone();
            tp[p] += h;
            let mut tm = theta.clone();
            tm[p] -= h;
            let (a, b) = (r_at(&tp), r_at(&tm));
            a.iter().zip(&b).map(|(a, b)| (a - b) / (2.0 * h)).collect()
        };
        let (d1, d2) = (central(2e-3), central(1e-3));
        for i in 0..n {
            jfd[i * np + p] = (4.0 * d2[i] - d1[i]) / 3.0;
        }
    }
    let worst = j
        .iter()
        .zip(&jfd)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-8, "max |J − J_fd| = {worst:e}");
    for i in [0, 7, nc - 1, nc, n - 1] {
        let row = autograd_row(&mlp, &set, i);
        for (a, b) in j[i * np..(i + 1) * np].iter().zip(&row) {
            assert!(
                (a - b).abs() < 1e-11 * b.abs().max(1.0),
                "row {i}: {a} vs autograd {b}"
            );
        }
    }

    // K_uu = J_u J_uᵀ / N_c from the difference rows, against the NTK module's dense and Gram
    // routes.
    let kfd: Vec<f64> = (0..nc)
        .flat_map(|a| {
            let jfd = &jfd;
            (0..nc).map(move |b| {
                (0..np)
                    .map(|p| jfd[a * np + p] * jfd[b * np + p])
                    .sum::<f64>()
                    / nc as f64
            })
        })
        .collect();
    let fro_fd = kfd.iter().map(|v| v * v).sum::<f64>().sqrt();
    let trace_fd: f64 = (0..nc).map(|a| kfd[a * nc + a]).sum();
    for method in [Method::Dense, Method::Gram] {
        let opts = NtkOptions {
            method,
            ..NtkOptions::default()
        };
        let (rep, dense) = analyse(&mut ev, &mlp, &set, &opts).unwrap();
        assert_eq!((rep.nc, rep.nb, rep.np), (nc, set.n_bc, np));
        assert!((rep.k_uu_fro - fro_fd).abs() < 1e-8 * fro_fd, "{method:?}");
        assert!(
            (rep.k_uu_trace - trace_fd).abs() < 1e-8 * trace_fd,
            "{method:?}"
        );
        if let Some(d) = dense {
            let k = d.k_uu();
            for a in 0..nc {
                for b in 0..nc {
                    let want = kfd[a * nc + b];
                    assert!((k[(a, b)] - want).abs() < 1e-8 * fro_fd, "K_uu[{a},{b}]");
                }
            }
        }
        assert!(rep.k_uu_eig_top[0] <= rep.k_uu_trace * (1.0 + 1e-12));
    }
}
