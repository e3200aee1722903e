//! The device engine's step (crates/model/src/device), run through the host backend — the same
//! sequence of cuBLAS-convention gemms and named kernels a GPU runs, with a reference gemm and the
//! host-compiled CUDA headers — against the CPU engine: loss terms and ∂L/∂θ to 1e-12 in f64, to
//! f32 rounding in f32, on several architectures, PDE and boundary rows, and N not a multiple of
//! the 256-row reduction tile.

use mspinn_model::device::{DeviceStep, HostBackend, StepPlan};
use mspinn_model::evaluator::{CpuEvaluator, Evaluator};
use mspinn_model::fixture::{self, Fixture};
use mspinn_model::{Activation, DType, EngineOptions, Gradient};

fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn host_backend_step_equals_the_cpu_engine() {
    for (hidden, n, preset) in [
        (vec![7], 37, "twoscale-darcy"),
        (vec![40, 40, 40, 40], 300, "twoscale-darcy"),
        (vec![12, 1, 9], 520, "twoscale-poisson"),
    ] {
        let set = Fixture::new(preset)
            .eps(1.0 / 16.0)
            .endpoints(n)
            .lambda(4.0)
            .set()
            .unwrap();
        let mlp = fixture::net(&hidden, Activation::Tanh, 11, DType::F64).unwrap();
        let mut cpu = CpuEvaluator::new(&mlp, EngineOptions::default()).unwrap();
        let mut g = Gradient::default();
        let want = cpu.loss_and_grad(&mlp, &set, &mut g).unwrap();
        let want_g = g.to_f64().unwrap();

        let mut step = DeviceStep::<f64, _>::for_network(HostBackend::new(), &mlp, &set).unwrap();
        let theta = mlp.flat_params().unwrap();
        let mut got_g = vec![f64::NAN; theta.len()];
        let got = step.run(&theta, Some(&mut got_g)).unwrap();
        let what = format!("{hidden:?} on {} rows", set.len());
        for (a, b, term) in [(got.pde, want.pde, "pde"), (got.bc, want.bc, "bc")] {
            assert!(
                (a - b).abs() <= 1e-12 * want.total,
                "{what}: loss {term} {a} vs {b}"
            );
        }
        let e = rel_max(&got_g, &want_g);
        assert!(e <= 1e-12, "{what}: gradient differs by {e:e}");
        // The loss alone is the same forward.
        assert_eq!(step.run(&theta, None).unwrap(), got);

        // f32, to f32 rounding.
        let m32 = mlp.to(DType::F32, &candle_core::Device::Cpu).unwrap();
        let mut s32 = DeviceStep::<f32, _>::for_network(HostBackend::new(), &m32, &set).unwrap();
        let t32: Vec<f32> = theta.iter().map(|&v| v as f32).collect();
        let mut g32 = vec![0f32; theta.len()];
        let l32 = s32.run(&t32, Some(&mut g32)).unwrap();
        assert!(
            (l32.total - want.total).abs() <= 1e-4 * want.total,
            "{what}: f32 loss"
        );
        let g32: Vec<f64> = g32.into_iter().map(f64::from).collect();
        assert!(rel_max(&g32, &want_g) <= 1e-3, "{what}: f32 gradient");
    }
}

#[test]
fn the_step_refuses_what_it_cannot_run() {
    let set = Fixture::new("fp-poisson").midpoints(8).set().unwrap();
    let sin = fixture::net(&[5], Activation::Sin, 1, DType::F64).unwrap();
    let err = DeviceStep::<f64, _>::for_network(HostBackend::new(), &sin, &set)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("activation") && err.contains("sin"), "{err}");
    let plan = StepPlan::new(&[1, 5, 1], 10, 10);
    assert!(DeviceStep::<f64, _>::new(HostBackend::new(), plan, &[0.0; 9], &[0.0; 50]).is_err());
}
