//! ∂L/∂θ from autograd over the jets against central finite differences of L, in f64,
//! for the three residual kinds (Darcy, Poisson, regression).

use mspinn_model::{Activation, DType, Device, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{collocation, PointSpec, Problem};

fn residual_set(preset: &str, eps: Option<f64>, n: usize, lambda: f64) -> ResidualSet {
    let p = Problem::preset(preset, eps).unwrap();
    let x = collocation(p.domain, PointSpec::Endpoints(n)).unwrap();
    ResidualSet::new(
        &p.pde_rows(&x).unwrap(),
        &p.boundary_rows(),
        lambda,
        DType::F64,
        &Device::Cpu,
    )
    .unwrap()
}

fn check_gradient(set: &ResidualSet, hidden: Vec<usize>) {
    let cfg = MlpConfig::new(hidden, Activation::Tanh, Init::GlorotNormal, 9);
    let mlp = Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap();
    let theta = mlp.flat_params().unwrap();
    let g = mlp.loss_and_grad(set).unwrap().flat_grad().unwrap();
    assert_eq!(g.len(), theta.len());
    let mut fd = vec![0.0; theta.len()];
    for j in 0..theta.len() {
        let h = 1e-6 * (1.0 + theta[j].abs());
        let mut t = theta.clone();
        t[j] = theta[j] + h;
        mlp.set_flat_params(&t).unwrap();
        let lp = mlp.loss(set).unwrap().total;
        t[j] = theta[j] - h;
        mlp.set_flat_params(&t).unwrap();
        let lm = mlp.loss(set).unwrap().total;
        fd[j] = (lp - lm) / (2.0 * h);
    }
    mlp.set_flat_params(&theta).unwrap();
    let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let err = g
        .iter()
        .zip(&fd)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    assert!(norm > 0.0);
    assert!(err <= 1e-6 * norm, "‖g − fd‖/‖g‖ = {}", err / norm);
    // And componentwise, relative to the gradient's scale.
    let gmax = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (j, (a, b)) in g.iter().zip(&fd).enumerate() {
        assert!((a - b).abs() <= 1e-6 * gmax, "component {j}: {a} vs {b}");
    }
}

#[test]
fn darcy_gradient_matches_finite_differences() {
    check_gradient(
        &residual_set("twoscale-darcy", Some(1.0 / 8.0), 64, 2.0),
        vec![12, 10],
    );
}

#[test]
fn poisson_gradient_matches_finite_differences() {
    check_gradient(
        &residual_set("twoscale-poisson", Some(1.0 / 8.0), 64, 2.0),
        vec![12, 10],
    );
}

#[test]
fn regression_gradient_matches_finite_differences() {
    check_gradient(
        &residual_set("twoscale-regression", Some(1.0 / 8.0), 64, 0.0),
        vec![12, 10],
    );
}

#[test]
fn loss_equals_eq7_by_hand() {
    // L = (1/N_c) Σ ½ r_i² + (λ/N_b) Σ ½ r_b², with r from the jets and the problem's rows.
    let p = Problem::preset("twoscale-darcy", Some(1.0 / 16.0)).unwrap();
    let x = collocation(p.domain, PointSpec::Midpoints(50)).unwrap();
    let pde = p.pde_rows(&x).unwrap();
    let bc = p.boundary_rows();
    let lambda = 3.0;
    let set = ResidualSet::new(&pde, &bc, lambda, DType::F64, &Device::Cpu).unwrap();
    let cfg = MlpConfig::new(vec![8], Activation::Tanh, Init::Normal, 2);
    let mlp = Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap();
    let jets = mlp.jets(&set.x).unwrap();
    let v = |t: &candle_core::Tensor| -> Vec<f64> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let (u, du, d2u) = (v(&jets.u), v(&jets.du), v(&jets.d2u));
    let mut lp = 0.0;
    for i in 0..x.len() {
        // Darcy: r = −(a u'' + a'/ε u') − f.
        let r = pde.c2[i] * d2u[i] + pde.c1[i] * du[i] - pde.g[i];
        lp += 0.5 * r * r / x.len() as f64;
    }
    let mut lb = 0.0;
    for j in 0..2 {
        let r = u[x.len() + j] - bc.g[j];
        lb += 0.5 * r * r * lambda / 2.0;
    }
    let t = mlp.loss(&set).unwrap();
    assert!((t.pde - lp).abs() <= 1e-12 * lp.abs());
    assert!((t.bc - lb).abs() <= 1e-12 * lb.abs().max(1e-300));
    assert!((t.total - lp - lb).abs() <= 1e-12 * (lp + lb));
}
