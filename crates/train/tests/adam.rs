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
