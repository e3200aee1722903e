//! The CPU engine's jets, gradient and Jacobian rows for a network on ℝ² (issue 18), held
//! against computations that share none of its code: an elementwise second-order Taylor
//! forward written here (one direction at a time, no stacking, no gemm), central finite
//! differences of the plain forward pass, candle's autograd over the candle jets, and
//! Richardson-extrapolated finite-difference Jacobian rows of that elementwise forward.

use candle_core::{DType, Device};
use mspinn_model::evaluator::{CandleEvaluator, CpuEvaluator};
use mspinn_model::{
    Activation, EngineOptions, Evaluator, Gradient, Init, Mlp, MlpConfig, ResidualSet,
};
use mspinn_problem::{Coefficient2d, LinearResidual2d, Problem2d, Rect};

fn net(act: Activation, seed: u64) -> Mlp {
    let c = MlpConfig::new(vec![7, 5, 6], act, Init::GlorotNormal, seed).with_input_dim(2);
    Mlp::new(c, DType::F64, &Device::Cpu).unwrap()
}

fn points(n: usize) -> Vec<[f64; 2]> {
    (0..n)
        .map(|i| {
            let t = i as f64 + 0.5;
            [(t * 0.618_033_988).fract(), (t * 0.754_877_666).fract()]
        })
        .collect()
}

/// Layers as (weight rows, bias) in f64 from a flat parameter vector.
fn layers(dims: &[usize], theta: &[f64]) -> Vec<(Vec<Vec<f64>>, Vec<f64>)> {
    let mut off = 0;
    dims.windows(2)
        .map(|w| {
            let (i, o) = (w[0], w[1]);
            let wt = (0..o)
                .map(|r| theta[off + r * i..off + (r + 1) * i].to_vec())
                .collect();
            off += i * o;
            let b = theta[off..off + o].to_vec();
            off += o;
            (wt, b)
        })
        .collect()
}

/// σ, σ', σ'', one value at a time.
fn sigma(act: Activation, z: f64) -> (f64, f64, f64) {
    match act {
        Activation::Tanh => {
            let t = z.tanh();
            (t, 1.0 - t * t, -2.0 * t * (1.0 - t * t))
        }
        Activation::Sin => (z.sin(), z.cos(), -z.sin()),
        Activation::Softplus => {
            let s = 1.0 / (1.0 + (-z).exp());
            ((1.0 + z.exp()).ln(), s, s * (1.0 - s))
        }
    }
}

/// (u, ∂ₖu, ∂ₖₖu) at p: the univariate Taylor jet along eₖ, neuron by neuron.
fn jet_along(
    net: &[(Vec<Vec<f64>>, Vec<f64>)],
    act: Activation,
    p: [f64; 2],
    k: usize,
) -> [f64; 3] {
    let mut h: Vec<[f64; 3]> = (0..2)
        .map(|c| [p[c], if c == k { 1.0 } else { 0.0 }, 0.0])
        .collect();
    for (l, (w, b)) in net.iter().enumerate() {
        let mut z: Vec<[f64; 3]> = w
            .iter()
            .zip(b)
            .map(|(row, &bj)| {
                let mut acc = [bj, 0.0, 0.0];
                for (wc, hc) in row.iter().zip(&h) {
                    for s in 0..3 {
                        acc[s] += wc * hc[s];
                    }
                }
                acc
            })
            .collect();
        if l + 1 < net.len() {
            for v in &mut z {
                let (s0, s1, s2) = sigma(act, v[0]);
                *v = [s0, s1 * v[1], s2 * v[1] * v[1] + s1 * v[2]];
            }
        }
        h = z;
    }
    h[0]
}

/// Residual rows r = c_u u + Σ c_grad ∂u + Σ c_hess ∂∂u − rhs from the elementwise jets.
fn residuals_ref(
    dims: &[usize],
    act: Activation,
    theta: &[f64],
    rows: &LinearResidual2d,
) -> Vec<f64> {
    let net = layers(dims, theta);
    rows.points
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let jx = jet_along(&net, act, p, 0);
            let jy = jet_along(&net, act, p, 1);
            rows.c_u[i] * jx[0]
                + rows.c_grad[0][i] * jx[1]
                + rows.c_grad[1][i] * jy[1]
                + rows.c_hess[0][i] * jx[2]
                + rows.c_hess[1][i] * jy[2]
                - rows.rhs[i]
        })
        .collect()
}

/// Rows that pick one jet channel: 0 u, 1 ∂ₓu, 2 ∂ᵧu, 3 ∂ₓₓu, 4 ∂ᵧᵧu.
fn picker(pts: &[[f64; 2]], channel: usize) -> LinearResidual2d {
    let n = pts.len();
    let z = vec![0.0; n];
    let one = vec![1.0; n];
    let mut r = LinearResidual2d {
        points: pts.to_vec(),
        c_u: z.clone(),
        c_grad: [z.clone(), z.clone()],
        c_hess: [z.clone(), z.clone()],
        rhs: z.clone(),
    };
    match channel {
        0 => r.c_u = one,
        1 | 2 => r.c_grad[channel - 1] = one,
        _ => r.c_hess[channel - 3] = one,
    }
    r
}

fn empty() -> LinearResidual2d {
    LinearResidual2d::default()
}

fn cpu(mlp: &Mlp, tile: usize, threads: usize) -> CpuEvaluator {
    CpuEvaluator::new(mlp, EngineOptions { tile, threads }).unwrap()
}

/// The Darcy rows of the oscillatory problem at ε = 1/4, PDE and boundary.
fn darcy(n: usize) -> (LinearResidual2d, LinearResidual2d) {
    let rect = Rect::new([0.0, 1.0], [0.0, 1.0]).unwrap();
    let p = Problem2d::manufactured(
        rect,
        0.25,
        Coefficient2d::oscillatory_2d().unwrap(),
        "sin(pi*x)*sin(pi*y) + eps*sin(pi*x)*sin(pi*y)*sin(2*pi*x/eps)",
    )
    .unwrap();
    let pde = p.pde_rows(&points(n)).unwrap();
    let bpts = mspinn_problem::boundary_points(rect, 8).unwrap();
    (pde, p.boundary_rows(&bpts).unwrap())
}

#[test]
fn jets_match_elementwise_taylor_candle_and_finite_differences() {
    for act in [Activation::Tanh, Activation::Sin, Activation::Softplus] {
        let mlp = net(act, 3);
        let dims = mlp.config().dims();
        let theta = mlp.flat_params().unwrap();
        let refnet = layers(&dims, &theta);
        let pts = points(37);
        // Tile 8 so several tiles and a ragged last tile run.
        let mut e = cpu(&mlp, 8, 1);
        let mut got = Vec::new();
        for ch in 0..5 {
            let set =
                ResidualSet::new_2d(&picker(&pts, ch), &empty(), 0.0, DType::F64, &Device::Cpu)
                    .unwrap();
            let mut r = Vec::new();
            e.residuals(&mlp, &set, &mut r).unwrap();
            got.push(r);
        }
        // candle's d-dimensional jets.
        let x = mspinn_model::mlp::points_tensor_nd(
            &pts.iter().flatten().copied().collect::<Vec<_>>(),
            2,
            DType::F64,
            &Device::Cpu,
        )
        .unwrap();
        let j = mlp.jets(&x).unwrap();
        let cu: Vec<f64> = j.u.flatten_all().unwrap().to_vec1().unwrap();
        let cd: Vec<Vec<f64>> = j.du.to_vec2().unwrap();
        let cdd: Vec<Vec<f64>> = j.d2u.to_vec2().unwrap();
        let fwd = |p: [f64; 2]| mlp.eval_points_nd(&p).unwrap()[0];
        for (i, &p) in pts.iter().enumerate() {
            let jx = jet_along(&refnet, act, p, 0);
            let jy = jet_along(&refnet, act, p, 1);
            let want = [jx[0], jx[1], jy[1], jx[2], jy[2]];
            let cand = [cu[i], cd[i][0], cd[i][1], cdd[i][0], cdd[i][1]];
            for ch in 0..5 {
                let scale = want[ch].abs().max(1.0);
                assert!(
                    (got[ch][i] - want[ch]).abs() < 1e-13 * scale,
                    "{act:?} ch {ch} row {i}"
                );
                assert!(
                    (cand[ch] - want[ch]).abs() < 1e-13 * scale,
                    "{act:?} candle ch {ch}"
                );
            }
            // Central differences of the plain forward pass.
            for k in 0..2 {
                let shift = |h: f64| {
                    let mut q = p;
                    q[k] += h;
                    fwd(q)
                };
                let h1 = 1e-5;
                let d1 = (shift(h1) - shift(-h1)) / (2.0 * h1);
                let h2 = 1e-4;
                let d2 = (shift(h2) - 2.0 * fwd(p) + shift(-h2)) / (h2 * h2);
                assert!((got[1 + k][i] - d1).abs() < 1e-8, "{act:?} ∂{k}u row {i}");
                assert!(
                    (got[3 + k][i] - d2).abs() < 2e-5,
                    "{act:?} ∂{k}{k}u row {i}"
                );
            }
            assert!((got[0][i] - fwd(p)).abs() < 1e-14);
        }
    }
}

#[test]
fn gradient_matches_candle_autograd_and_finite_differences() {
    let (pde, bc) = darcy(45);
    for act in [Activation::Tanh, Activation::Softplus] {
        let mlp = net(act, 11);
        let set = ResidualSet::new_2d(&pde, &bc, 3.0, DType::F64, &Device::Cpu).unwrap();
        let mut g = Gradient::default();
        let t_cpu = cpu(&mlp, 16, 2).loss_and_grad(&mlp, &set, &mut g).unwrap();
        let g_cpu = g.to_f64().unwrap();
        let mut g2 = Gradient::default();
        let t_c = CandleEvaluator::new(&mlp)
            .loss_and_grad(&mlp, &set, &mut g2)
            .unwrap();
        let g_c = g2.to_f64().unwrap();
        assert!((t_cpu.total - t_c.total).abs() < 1e-12 * t_c.total);
        assert!((t_cpu.bc - t_c.bc).abs() < 1e-12 * t_c.total);
        let gmax = g_c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in g_cpu.iter().zip(&g_c) {
            assert!((a - b).abs() < 1e-12 * gmax, "{act:?}: {a} vs candle {b}");
        }
        // Finite differences of the loss from the elementwise forward, every parameter.
        let dims = mlp.config().dims();
        let theta = mlp.flat_params().unwrap();
        let all = pde.concat(&bc);
        let loss = |th: &[f64]| -> f64 {
            residuals_ref(&dims, act, th, &all)
                .iter()
                .zip(&set.host_w)
                .map(|(r, w)| 0.5 * w * r * r)
                .sum()
        };
        assert!((loss(&theta) - t_cpu.total).abs() < 1e-12 * t_cpu.total);
        for p in 0..theta.len() {
            let h = 1e-5;
            let mut tp = theta.clone();
            tp[p] += h;
            let mut tm = theta.clone();
            tm[p] -= h;
            let fd = (loss(&tp) - loss(&tm)) / (2.0 * h);
            assert!(
                (g_cpu[p] - fd).abs() < 1e-6 * gmax,
                "{act:?} θ{p}: {} vs fd {fd}",
                g_cpu[p]
            );
        }
    }
}

#[test]
fn jacobian_rows_match_richardson_finite_differences_to_1e8() {
    let (pde, bc) = darcy(20);
    let mlp = net(Activation::Tanh, 5);
    let set = ResidualSet::new_2d(&pde, &bc, 1.0, DType::F64, &Device::Cpu).unwrap();
    let n = set.len();
    let np = mlp.num_params();
    let mut j = Vec::new();
    cpu(&mlp, 8, 2)
        .jacobian_f64(&mlp, &set, 0..n, &mut j)
        .unwrap();
    // The same rows through the tensor route and a sub-range.
    let jt: Vec<f64> = cpu(&mlp, 128, 1)
        .jacobian(&mlp, &set, 3..9)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(&jt[..], &j[3 * np..9 * np]);
    let dims = mlp.config().dims();
    let theta = mlp.flat_params().unwrap();
    let all = pde.concat(&bc);
    let r = |th: &[f64]| residuals_ref(&dims, Activation::Tanh, th, &all);
    let central = |p: usize, h: f64| -> Vec<f64> {
        let mut tp = theta.clone();
        tp[p] += h;
        let mut tm = theta.clone();
        tm[p] -= h;
        r(&tp)
            .iter()
            .zip(r(&tm))
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect()
    };
    let mut worst = 0.0f64;
    for p in 0..np {
        let (d1, d2) = (central(p, 2e-3), central(p, 1e-3));
        for i in 0..n {
            let fd = (4.0 * d2[i] - d1[i]) / 3.0;
            worst = worst.max((j[i * np + p] - fd).abs());
        }
    }
    assert!(worst < 1e-8, "max |J − J_fd| = {worst:e}");
}

#[test]
fn float32_and_threads_agree_and_bad_sets_are_refused() {
    let (pde, bc) = darcy(33);
    let mlp = net(Activation::Tanh, 2);
    let set = ResidualSet::new_2d(&pde, &bc, 1.0, DType::F64, &Device::Cpu).unwrap();
    let mut g1 = Gradient::default();
    let t1 = cpu(&mlp, 8, 1).loss_and_grad(&mlp, &set, &mut g1).unwrap();
    let mut g3 = Gradient::default();
    let t3 = cpu(&mlp, 8, 3).loss_and_grad(&mlp, &set, &mut g3).unwrap();
    assert!((t1.total - t3.total).abs() < 1e-13 * t1.total);
    let m32 = mlp.to(DType::F32, &Device::Cpu).unwrap();
    let s32 = ResidualSet::new_2d(&pde, &bc, 1.0, DType::F32, &Device::Cpu).unwrap();
    let t32 = cpu(&m32, 8, 1).loss(&m32, &s32).unwrap();
    assert!((t32.total - t1.total).abs() < 1e-4 * t1.total);
    // A 1-D set for a 2-D network (and the reverse) is an error, not a misread buffer.
    let one_d = mspinn_problem::LinearResidual {
        x: vec![0.5],
        c0: vec![1.0],
        c1: vec![0.0],
        c2: vec![0.0],
        g: vec![0.0],
    };
    let s1 = ResidualSet::new(&one_d, &Default::default(), 0.0, DType::F64, &Device::Cpu).unwrap();
    assert!(cpu(&mlp, 8, 1).loss(&mlp, &s1).is_err());
    // The candle Jacobian sweep and the device engine are 1-D; they say so.
    let err = CandleEvaluator::new(&mlp)
        .jacobian(&mlp, &set, 0..2)
        .unwrap_err();
    assert!(err.to_string().contains("--engine cpu"), "{err}");
}

#[test]
fn weights_file_keeps_the_input_dimension() {
    let mlp = net(Activation::Tanh, 9);
    let dir = std::env::temp_dir().join(format!("mspinn-2d-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    mlp.save(&path).unwrap();
    let back = Mlp::load_with_config(&path, &Device::Cpu).unwrap();
    assert_eq!(back.config().input_dim, 2);
    assert_eq!(back.flat_params().unwrap(), mlp.flat_params().unwrap());
    let one = MlpConfig::new(vec![7, 5, 6], Activation::Tanh, Init::GlorotNormal, 9);
    assert!(Mlp::load_checked(&path, &one, DType::F64, &Device::Cpu).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
