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

/// The GPU engine's Adam update (kernels/src/jets_common.cuh, `__host__ __device__`, compiled for
/// the host) equals the host Adam bit for bit over 25 steps, f64 and f32: the constants are
/// computed once in f64 and rounded, the update is the same operations in the same order.
#[test]
fn header_adam_equals_the_host_adam_bit_for_bit() {
    use mspinn_kernels::host_header::HeaderFloat;
    use mspinn_train::adam::{BETA1, BETA2, EPS};

    fn run<T: HeaderFloat + candle_core::WithDType + mspinn_model::Real>() {
        let dev = Device::Cpu;
        let n = 64;
        let theta0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.61).sin()).collect();
        let var = Var::from_tensor(
            &Tensor::from_slice(&theta0, n, &dev)
                .unwrap()
                .to_dtype(T::DTYPE)
                .unwrap(),
        )
        .unwrap();
        let mut adam = Adam::new(vec![var.clone()]).unwrap();
        let mut state: Vec<[T; 3]> = theta0
            .iter()
            .map(|&t| [T::of(t), T::of(0.0), T::of(0.0)])
            .collect();
        let lr = 3e-3;
        for t in 1..=25i32 {
            let g: Vec<T> = (0..n)
                .map(|i| {
                    T::of(((i as i32 * t) as f64 * 0.173).cos() * 10f64.powi(i as i32 % 7 - 3))
                })
                .collect();
            let flat = if T::DTYPE == DType::F64 {
                FlatGrad::F64(g.iter().map(|v| v.to_f64()).collect())
            } else {
                FlatGrad::F32(g.iter().map(|v| v.to_f64() as f32).collect())
            };
            adam.step_flat(&flat, lr).unwrap();
            let c = |x: f64| T::of(x);
            let consts = [
                c(BETA1),
                c(BETA2),
                c(1.0 - BETA1),
                c(1.0 - BETA2),
                c(1.0 / (1.0 - BETA1.powi(t))),
                c(1.0 / (1.0 - BETA2.powi(t))),
                c(lr),
                c(EPS),
            ];
            for (s, &gi) in state.iter_mut().zip(&g) {
                T::adam_update(consts, gi, s);
            }
        }
        let got: Vec<f64> = var
            .as_tensor()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap();
        for (i, (a, s)) in got.iter().zip(&state).enumerate() {
            assert_eq!(*a, s[0].to_f64(), "{:?} θ[{i}]", T::DTYPE);
        }
        assert!(
            got.iter().zip(&theta0).any(|(a, b)| a != b),
            "the steps moved θ"
        );
    }
    run::<f64>();
    run::<f32>();
}

/// The GPU engine's resident Adam (θ and moments kept by the engine, the header's update on the
/// device buffers; here the host backend) against the trainer's host Adam fed by the same
/// engine's gradients: the same trajectory bit for bit over 30 steps with two learning rates,
/// in f64 and f32, and the moments handed back through `store` restart it exactly.
#[test]
fn resident_adam_equals_the_host_adam_bit_for_bit() {
    use mspinn_model::evaluator::build;
    use mspinn_model::fixture::{self, Fixture};
    use mspinn_model::{Activation, Engine, EngineConfig, Gradient};

    let set = Fixture::new("twoscale-darcy")
        .eps(1.0 / 8.0)
        .endpoints(64)
        .lambda(2.0)
        .set()
        .unwrap();
    for dtype in [DType::F64, DType::F32] {
        let config = EngineConfig::new(Some(Engine::GpuHost), Default::default());
        let host_net = fixture::net(&[10, 10], mspinn_model::Activation::Tanh, 7, dtype).unwrap();
        let dev_net = fixture::net(&[10, 10], Activation::Tanh, 7, dtype).unwrap();
        let mut host_ev = build(&config, &host_net).unwrap();
        let mut dev_ev = build(&config, &dev_net).unwrap();

        let mut adam = Adam::new(host_net.vars()).unwrap();
        let mut g = Gradient::default();
        let ra = dev_ev
            .resident_adam()
            .expect("the GPU engine keeps Adam resident");
        ra.load(&dev_net, &set, &[], &[], 0).unwrap();
        for t in 0..30 {
            let lr = if t < 15 { 1e-2 } else { 3e-3 };
            let want = host_ev.loss_and_grad(&host_net, &set, &mut g).unwrap();
            adam.step_with(&g, lr).unwrap();
            let got = ra.step(&set, lr).unwrap();
            assert_eq!(got, want, "{dtype:?} step {t}: loss terms");
        }
        let (mut m, mut v) = (Vec::new(), Vec::new());
        assert_eq!(ra.store(&dev_net, &mut m, &mut v).unwrap(), 30);
        assert_eq!(
            dev_net.flat_params().unwrap(),
            host_net.flat_params().unwrap(),
            "{dtype:?}: θ after 30 steps"
        );
        let (hm, hv) = adam.flat_moments().unwrap();
        assert_eq!((&m, &v), (&hm, &hv), "{dtype:?}: moments");

        // Restarted from the stored state in a fresh evaluator: the next step agrees too.
        let mut fresh = build(&config, &dev_net).unwrap();
        let ra2 = fresh.resident_adam().unwrap();
        ra2.load(&dev_net, &set, &m, &v, 30).unwrap();
        let want = host_ev.loss_and_grad(&host_net, &set, &mut g).unwrap();
        adam.step_with(&g, 1e-3).unwrap();
        assert_eq!(ra2.step(&set, 1e-3).unwrap(), want);
        ra2.store(&dev_net, &mut m, &mut v).unwrap();
        assert_eq!(
            dev_net.flat_params().unwrap(),
            host_net.flat_params().unwrap()
        );
    }
}
