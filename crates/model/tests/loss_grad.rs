//! ∂L/∂θ from every evaluator (the CPU engine's reverse pass, candle's autograd over the jets, the GPU engine's step on the host backend)
//! against central finite differences of L, in f64, for the three residual kinds (Darcy,
//! Poisson, regression); and the loss against eq. (7) by hand.

use mspinn_model::evaluator;
use mspinn_model::fixture::{self, Fixture};
use mspinn_model::{Activation, DType, Engine, EngineConfig, Gradient, ResidualSet};
use mspinn_problem::{collocation, PointSpec, Problem};

const ENGINES: [Engine; 3] = [Engine::Cpu, Engine::Candle, Engine::GpuHost];

fn residual_set(preset: &str, eps: Option<f64>, n: usize, lambda: f64) -> ResidualSet {
    let f = Fixture::new(preset).endpoints(n).lambda(lambda);
    match eps {
        Some(e) => f.eps(e),
        None => f,
    }
    .set()
    .unwrap()
}

fn check_gradient(set: &ResidualSet, hidden: Vec<usize>) {
    for engine in ENGINES {
        check_gradient_with(engine, set, hidden.clone());
    }
}

fn check_gradient_with(engine: Engine, set: &ResidualSet, hidden: Vec<usize>) {
    let mlp = fixture::net(&hidden, Activation::Tanh, 9, DType::F64).unwrap();
    let mut ev =
        evaluator::build(&EngineConfig::new(Some(engine), Default::default()), &mlp).unwrap();
    assert_eq!(ev.engine(), engine);
    let theta = mlp.flat_params().unwrap();
    let mut grad = Gradient::default();
    ev.loss_and_grad(&mlp, set, &mut grad).unwrap();
    let g = grad.to_f64().unwrap();
    assert_eq!(g.len(), theta.len());
    let mut fd = vec![0.0; theta.len()];
    for j in 0..theta.len() {
        let h = 1e-6 * (1.0 + theta[j].abs());
        let mut t = theta.clone();
        t[j] = theta[j] + h;
        mlp.set_flat_params(&t).unwrap();
        let lp = ev.loss(&mlp, set).unwrap().total;
        t[j] = theta[j] - h;
        mlp.set_flat_params(&t).unwrap();
        let lm = ev.loss(&mlp, set).unwrap().total;
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
    assert!(
        err <= 1e-6 * norm,
        "{engine}: ‖g − fd‖/‖g‖ = {}",
        err / norm
    );
    // And componentwise, relative to the gradient's scale.
    let gmax = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (j, (a, b)) in g.iter().zip(&fd).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 * gmax,
            "{engine} component {j}: {a} vs {b}"
        );
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
    let set = Fixture::new("twoscale-darcy")
        .eps(1.0 / 16.0)
        .midpoints(50)
        .lambda(lambda)
        .set()
        .unwrap();
    let mlp = fixture::net_with(
        &[8],
        Activation::Tanh,
        mspinn_model::Init::Normal,
        2,
        DType::F64,
    )
    .unwrap();
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
    for engine in ENGINES {
        let mut ev =
            evaluator::build(&EngineConfig::new(Some(engine), Default::default()), &mlp).unwrap();
        let t = ev.loss(&mlp, &set).unwrap();
        assert!((t.pde - lp).abs() <= 1e-12 * lp.abs(), "{engine}");
        assert!(
            (t.bc - lb).abs() <= 1e-12 * lb.abs().max(1e-300),
            "{engine}"
        );
        assert!((t.total - lp - lb).abs() <= 1e-12 * (lp + lb), "{engine}");
    }
}
