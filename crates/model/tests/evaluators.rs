//! The two implementations of the evaluation seam agree: the candle evaluator (the path a GPU
//! runs) against the CPU engine, on CPU tensors in f64, to 1e-12 — loss terms, gradient,
//! residuals and Jacobian rows — so that when a GPU runs the candle evaluator only the device
//! differs. The engine is chosen once, by the config, and says so.

use mspinn_model::evaluator::{self, CandleEvaluator, CpuEvaluator, Evaluator};
use mspinn_model::fixture::{self, Fixture};
use mspinn_model::{
    Activation, DType, Engine, EngineConfig, EngineOptions, Gradient, Mlp, ResidualSet,
};

/// max_i |a_i − b_i| / max_i |b_i|.
fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn cases() -> Vec<(Mlp, ResidualSet)> {
    let darcy = Fixture::new("twoscale-darcy")
        .eps(1.0 / 32.0)
        .endpoints(513)
        .lambda(2.0)
        .set()
        .unwrap();
    let poisson = Fixture::new("twoscale-poisson")
        .eps(1.0 / 8.0)
        .midpoints(300)
        .lambda(100.0)
        .set()
        .unwrap();
    vec![
        (
            fixture::net(&[40, 40, 40, 40], Activation::Tanh, 3, DType::F64).unwrap(),
            darcy.clone(),
        ),
        (
            fixture::net(&[20, 7], Activation::Sin, 4, DType::F64).unwrap(),
            darcy,
        ),
        (
            fixture::net(&[30], Activation::Softplus, 5, DType::F64).unwrap(),
            poisson,
        ),
    ]
}

#[test]
fn candle_evaluator_agrees_with_the_cpu_engine_to_1e_12() {
    for (mlp, set) in cases() {
        let what = format!("{:?} {:?}", mlp.config().hidden, mlp.activation());
        let mut cpu = CpuEvaluator::new(
            &mlp,
            EngineOptions {
                tile: 64,
                threads: 2,
            },
        )
        .unwrap();
        let mut candle = CandleEvaluator::new(&mlp);

        let (lc, ld) = (
            cpu.loss(&mlp, &set).unwrap(),
            candle.loss(&mlp, &set).unwrap(),
        );
        for (a, b, term) in [
            (lc.total, ld.total, "total"),
            (lc.pde, ld.pde, "pde"),
            (lc.bc, ld.bc, "bc"),
        ] {
            assert!(
                (a - b).abs() <= 1e-12 * ld.total,
                "{what}: loss {term} {a} vs {b}"
            );
        }

        let (mut gc, mut gd) = (Gradient::default(), Gradient::default());
        cpu.loss_and_grad(&mlp, &set, &mut gc).unwrap();
        candle.loss_and_grad(&mlp, &set, &mut gd).unwrap();
        assert!(matches!(gc, Gradient::Host(_)) && matches!(gd, Gradient::Device(_)));
        let e = rel_max(&gc.to_f64().unwrap(), &gd.to_f64().unwrap());
        assert!(e <= 1e-12, "{what}: gradient differs by {e:e}");

        let (mut rc, mut rd) = (Vec::new(), Vec::new());
        let tc = cpu.residuals(&mlp, &set, &mut rc).unwrap();
        let td = candle.residuals(&mlp, &set, &mut rd).unwrap();
        let e = rel_max(&rc, &rd);
        assert!(e <= 1e-12, "{what}: residuals differ by {e:e}");
        assert_eq!(tc, lc, "{what}: the residual pass's loss is the loss");
        assert!((td.total - ld.total).abs() <= 1e-12 * ld.total);

        for rows in [0..set.len(), 500.min(set.len() - 3)..set.len()] {
            let (mut jc, mut jd) = (Vec::new(), Vec::new());
            cpu.jacobian_f64(&mlp, &set, rows.clone(), &mut jc).unwrap();
            candle
                .jacobian_f64(&mlp, &set, rows.clone(), &mut jd)
                .unwrap();
            let e = rel_max(&jc, &jd);
            assert!(e <= 1e-12, "{what}: Jacobian rows {rows:?} differ by {e:e}");
        }
    }
}

/// Σ_i w_i r_i ∂r_i/∂θ = ∇L ties residuals, Jacobian and gradient together in each evaluator.
#[test]
fn each_evaluator_is_consistent_with_itself() {
    let (mlp, set) = cases().swap_remove(0);
    for engine in [Engine::Cpu, Engine::Candle] {
        let mut ev =
            evaluator::build(&EngineConfig::new(Some(engine), Default::default()), &mlp).unwrap();
        let (mut r, mut j, mut g) = (Vec::new(), Vec::new(), Gradient::default());
        ev.residuals(&mlp, &set, &mut r).unwrap();
        ev.jacobian_f64(&mlp, &set, 0..set.len(), &mut j).unwrap();
        ev.loss_and_grad(&mlp, &set, &mut g).unwrap();
        let np = mlp.num_params();
        let mut sum = vec![0.0; np];
        for (i, row) in j.chunks_exact(np).enumerate() {
            let wr = set.host_w[i] * r[i];
            sum.iter_mut().zip(row).for_each(|(s, v)| *s += wr * v);
        }
        let e = rel_max(&sum, &g.to_f64().unwrap());
        assert!(e <= 1e-11, "{engine}: Σ w r J vs ∇L: {e:e}");
    }
}

/// The engine is chosen once, from the config and the device, and never silently replaced.
#[test]
fn the_engine_is_chosen_once_and_named() {
    let mlp = fixture::net(&[5], Activation::Tanh, 1, DType::F64).unwrap();
    let cpu = evaluator::build(&EngineConfig::default(), &mlp).unwrap();
    assert_eq!(cpu.engine(), Engine::Cpu, "the CPU device's own engine");
    let candle = evaluator::build(
        &EngineConfig::new(Some(Engine::Candle), Default::default()),
        &mlp,
    )
    .unwrap();
    assert_eq!(candle.engine(), Engine::Candle);
    assert_eq!("candle".parse::<Engine>().unwrap(), Engine::Candle);
    let err = "tpu".parse::<Engine>().unwrap_err().to_string();
    assert!(err.contains("engine"), "{err}");
    // An f32 network for an evaluator built for f64 is refused, naming both.
    let mut ev = evaluator::build(&EngineConfig::default(), &mlp).unwrap();
    let m32 = mlp.to(DType::F32, &candle_core::Device::Cpu).unwrap();
    let set = Fixture::new("fp-poisson")
        .midpoints(8)
        .dtype(DType::F32)
        .set()
        .unwrap();
    let err = ev.loss(&m32, &set).unwrap_err().to_string();
    assert!(err.contains("F64") && err.contains("F32"), "{err}");
}
