//! The GPU engine behind the seam (`Engine::GpuHost`: the device step on the host backend, the
//! same gemms and kernels a GPU runs) against the CPU engine, method by method: loss, gradient,
//! residuals and Jacobian rows (whole and in chunks) to 1e-12 in f64. And two checks that need no
//! other engine: the Jacobian's rows weighted by w·r sum to the gradient (∇L = Jᵀ(w∘r)), and the
//! rows cached on the device follow the set when it changes.

use std::ops::Range;

use mspinn_model::evaluator::{build, CpuEvaluator, Evaluator};
use mspinn_model::fixture::{self, Fixture};
use mspinn_model::{Activation, DType, Engine, EngineConfig, EngineOptions, Gradient, Mlp};

fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn gpu_host(mlp: &Mlp) -> Box<dyn Evaluator> {
    build(
        &EngineConfig::new(Some(Engine::GpuHost), Default::default()),
        mlp,
    )
    .unwrap()
}

fn jac(
    ev: &mut dyn Evaluator,
    mlp: &Mlp,
    set: &mspinn_model::ResidualSet,
    r: Range<usize>,
) -> Vec<f64> {
    let mut out = Vec::new();
    ev.jacobian_f64(mlp, set, r, &mut out).unwrap();
    out
}

#[test]
fn gpu_host_equals_the_cpu_engine_method_by_method() {
    for (hidden, n) in [(vec![7], 37), (vec![16, 16, 16], 300)] {
        let set = Fixture::new("twoscale-darcy")
            .eps(1.0 / 16.0)
            .endpoints(n)
            .lambda(4.0)
            .set()
            .unwrap();
        let mlp = fixture::net(&hidden, Activation::Tanh, 5, DType::F64).unwrap();
        let mut cpu = CpuEvaluator::new(&mlp, EngineOptions::default()).unwrap();
        let mut dev = gpu_host(&mlp);
        assert_eq!(dev.engine(), Engine::GpuHost);
        let what = format!("{hidden:?} on {} rows", set.len());

        let (want, got) = (cpu.loss(&mlp, &set).unwrap(), dev.loss(&mlp, &set).unwrap());
        assert!(
            (got.total - want.total).abs() <= 1e-12 * want.total,
            "{what}: loss"
        );

        let (mut gc, mut gd) = (Gradient::default(), Gradient::default());
        cpu.loss_and_grad(&mlp, &set, &mut gc).unwrap();
        dev.loss_and_grad(&mlp, &set, &mut gd).unwrap();
        let e = rel_max(&gd.to_f64().unwrap(), &gc.to_f64().unwrap());
        assert!(e <= 1e-12, "{what}: gradient differs by {e:e}");

        let (mut rc, mut rd) = (Vec::new(), Vec::new());
        cpu.residuals(&mlp, &set, &mut rc).unwrap();
        dev.residuals(&mlp, &set, &mut rd).unwrap();
        let e = rel_max(&rd, &rc);
        assert!(e <= 1e-12, "{what}: residuals differ by {e:e}");

        let n = set.len();
        for r in [0..n, 3..17, n - 2..n, 0..1] {
            let (a, b) = (
                jac(dev.as_mut(), &mlp, &set, r.clone()),
                jac(&mut cpu, &mlp, &set, r.clone()),
            );
            let e = rel_max(&a, &b);
            assert!(e <= 1e-12, "{what}: Jacobian rows {r:?} differ by {e:e}");
        }
        // The tensor form: shape, dtype, device.
        let t = dev.jacobian(&mlp, &set, 2..9).unwrap();
        assert_eq!(t.dims(), &[7, mlp.num_params()]);
        assert_eq!(t.dtype(), DType::F64);
    }
}

#[test]
fn jacobian_rows_weighted_by_the_residual_sum_to_the_gradient() {
    let set = Fixture::new("twoscale-darcy")
        .eps(1.0 / 8.0)
        .endpoints(90)
        .lambda(3.0)
        .set()
        .unwrap();
    for dtype in [DType::F64, DType::F32] {
        let mlp = fixture::net(&[12, 12], Activation::Tanh, 3, dtype).unwrap();
        let mut dev = gpu_host(&mlp);
        let mut g = Gradient::default();
        dev.loss_and_grad(&mlp, &set, &mut g).unwrap();
        let g = g.to_f64().unwrap();
        let mut r = Vec::new();
        dev.residuals(&mlp, &set, &mut r).unwrap();
        let j = jac(dev.as_mut(), &mlp, &set, 0..set.len());
        let np = mlp.num_params();
        let mut jtr = vec![0.0; np];
        for (i, ri) in r.iter().enumerate() {
            let wr = set.host_w[i] * ri;
            for (k, acc) in jtr.iter_mut().enumerate() {
                *acc += wr * j[i * np + k];
            }
        }
        let tol = if dtype == DType::F64 { 1e-11 } else { 2e-4 };
        let e = rel_max(&jtr, &g);
        assert!(e <= tol, "{dtype:?}: Jᵀ(w∘r) differs from ∇L by {e:e}");
    }
}

#[test]
fn rows_cached_on_the_device_follow_the_set() {
    let mlp = fixture::net(&[9], Activation::Tanh, 1, DType::F64).unwrap();
    let a = Fixture::new("twoscale-darcy")
        .eps(0.25)
        .endpoints(40)
        .set()
        .unwrap();
    let b = Fixture::new("twoscale-darcy")
        .eps(0.125)
        .endpoints(55)
        .set()
        .unwrap();
    let mut dev = gpu_host(&mlp);
    let la = dev.loss(&mlp, &a).unwrap();
    let lb = dev.loss(&mlp, &b).unwrap();
    assert_eq!(dev.loss(&mlp, &a).unwrap(), la);
    assert_eq!(gpu_host(&mlp).loss(&mlp, &b).unwrap(), lb);
    assert_ne!(la, lb);
}

#[test]
fn gpu_engines_refuse_what_they_cannot_run() {
    let mlp = fixture::net(&[5], Activation::Tanh, 1, DType::F64).unwrap();
    let err = build(
        &EngineConfig::new(Some(Engine::Gpu), Default::default()),
        &mlp,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("gpu"), "{err}");
    let sine = fixture::net(&[5], Activation::Sin, 1, DType::F64).unwrap();
    let err = build(
        &EngineConfig::new(Some(Engine::GpuHost), Default::default()),
        &sine,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("tanh"), "{err}");
    assert_eq!("gpu-host".parse::<Engine>().unwrap(), Engine::GpuHost);
}
