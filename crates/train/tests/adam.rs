//! The host Adam (CPU variables, moments in host vectors, in-place update) against the same
//! update written as candle ops, and through a checkpoint round trip of its state.

use candle_core::{DType, Device, Tensor, Var};
use mspinn_model::FlatGrad;
use mspinn_train::Adam;

#[test]
fn host_adam_matches_candle_ops() {
    let dev = Device::Cpu;
    let theta0: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).sin()).collect();
    let var = Var::from_tensor(&Tensor::from_slice(&theta0, (3, 4), &dev).unwrap()).unwrap();
    let mut adam = Adam::new(vec![var.clone()]).unwrap();
    let (mut m, mut v) = (vec![0.0f64; 12], vec![0.0f64; 12]);
    let mut theta = theta0.clone();
    for t in 1..=5 {
        let g: Vec<f64> = (0..12).map(|i| ((i * t) as f64 * 0.11).cos()).collect();
        let lr = 1e-2;
        if t % 2 == 0 {
            adam.step_flat(&FlatGrad::F64(g.clone()), lr).unwrap();
        } else {
            adam.step(&[Tensor::from_slice(&g, (3, 4), &dev).unwrap()], lr)
                .unwrap();
        }
        let sm = 1.0 / (1.0 - 0.9f64.powi(t));
        let sv = 1.0 / (1.0 - 0.999f64.powi(t));
        for i in 0..12 {
            m[i] = m[i] * 0.9 + g[i] * (1.0 - 0.9);
            v[i] = v[i] * 0.999 + g[i] * g[i] * (1.0 - 0.999);
            theta[i] -= (m[i] * sm * lr) / ((v[i] * sv).sqrt() + 1e-8);
        }
    }
    let got: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    for (a, b) in got.iter().zip(&theta) {
        assert!((a - b).abs() <= 1e-15 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // The state goes out as tensors and comes back to the same moments.
    let st = adam.state().unwrap();
    assert_eq!(st.t, 5);
    let mv: Vec<f64> = st.m[0].flatten_all().unwrap().to_vec1().unwrap();
    assert!(mv.iter().zip(&m).all(|(a, b)| (a - b).abs() <= 1e-15));
    let again = Adam::with_state(vec![var.clone()], st).unwrap();
    assert_eq!(again.t(), 5);
    assert_eq!(again.state().unwrap().v[0].dtype(), DType::F64);
}

/// The path a GPU runs — candle's gradient (autograd over the jets) and Adam as tensor ops — and
/// the CPU path — the engine's gradient and the host Adam — train the same network to the same
/// parameters, to 1e-12 relative after 30 steps, in f64 on CPU tensors.
#[test]
fn tensor_path_trains_like_the_host_path() {
    use mspinn_model::evaluator::{CandleEvaluator, CpuEvaluator, Evaluator};
    use mspinn_model::fixture::{self, Fixture};
    use mspinn_model::{Activation, EngineOptions, Gradient};

    let set = Fixture::new("twoscale-darcy")
        .eps(1.0 / 16.0)
        .endpoints(200)
        .lambda(10.0)
        .set()
        .unwrap();
    let host = fixture::net(&[20, 20], Activation::Tanh, 8, DType::F64).unwrap();
    let tens = host.to(DType::F64, &Device::Cpu).unwrap();
    let mut cpu = CpuEvaluator::new(&host, EngineOptions::default()).unwrap();
    let mut candle = CandleEvaluator::new(&tens);
    let mut a_host = Adam::new(host.vars()).unwrap();
    let mut a_tens = Adam::with_tensor_moments(tens.vars()).unwrap();
    let (mut g_host, mut g_tens) = (Gradient::default(), Gradient::default());
    for _ in 0..30 {
        cpu.loss_and_grad(&host, &set, &mut g_host).unwrap();
        candle.loss_and_grad(&tens, &set, &mut g_tens).unwrap();
        assert!(matches!(g_tens, Gradient::Device(_)));
        a_host.step_with(&g_host, 1e-2).unwrap();
        a_tens.step_with(&g_tens, 1e-2).unwrap();
    }
    let (p, q) = (host.flat_params().unwrap(), tens.flat_params().unwrap());
    let scale = p.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let moved = p
        .iter()
        .zip(
            &fixture::net(&[20, 20], Activation::Tanh, 8, DType::F64)
                .unwrap()
                .flat_params()
                .unwrap(),
        )
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        moved > 1e-2 * scale,
        "the steps moved the parameters ({moved:e})"
    );
    for (k, (a, b)) in p.iter().zip(&q).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * scale,
            "θ[{k}]: host {a} vs tensor {b}"
        );
    }
}
