//! Training on ℝ² through the unchanged trainer (issue 18): Adam, L-BFGS and LM on a small
//! manufactured 2-D Darcy problem, the network evaluated by the CPU engine's 2-D jets.

use candle_core::{DType, Device};
use mspinn_model::evaluator::{CpuEvaluator, Evaluator};
use mspinn_model::{Activation, EngineOptions, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{
    boundary_points, collocation_2d, Coefficient2d, PointSpec2d, Problem2d, Rect,
};
use mspinn_train::{Schedule, TrainOptions, Trainer};

fn problem() -> (Problem2d, ResidualSet) {
    let rect = Rect::new([0.0, 1.0], [0.0, 1.0]).unwrap();
    let p = Problem2d::manufactured(
        rect,
        0.5,
        Coefficient2d::oscillatory_2d().unwrap(),
        "sin(pi*x)*sin(pi*y)",
    )
    .unwrap();
    let pts = collocation_2d(rect, PointSpec2d::Midpoints(144)).unwrap();
    let bpts = boundary_points(rect, 48).unwrap();
    let set = ResidualSet::new_2d(
        &p.pde_rows(&pts).unwrap(),
        &p.boundary_rows(&bpts).unwrap(),
        10.0,
        DType::F64,
        &Device::Cpu,
    )
    .unwrap();
    (p, set)
}

fn net() -> Mlp {
    let cfg =
        MlpConfig::new(vec![12, 12], Activation::Tanh, Init::GlorotNormal, 4).with_input_dim(2);
    Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap()
}

#[test]
fn adam_lbfgs_and_lm_lower_the_2d_loss() {
    let (p, set) = problem();
    for sched in ["150@1e-2,lbfgs:100", "50@1e-2,lm:30"] {
        let mlp = net();
        let mut ev = CpuEvaluator::new(&mlp, EngineOptions::default()).unwrap();
        let initial = ev.loss(&mlp, &set).unwrap().total;
        let schedule: Schedule = sched.parse().unwrap();
        let out = Trainer::new(&mlp, &set, &schedule, TrainOptions::default())
            .run(false)
            .unwrap();
        assert!(out.completed);
        let fin = out.final_loss.total;
        assert!(fin < initial * 1e-2, "{sched}: {initial:e} → {fin:e}");
        // And the network approximates u = sin(πx) sin(πy) away from nothing in particular.
        let q = [0.3, 0.6];
        let u = mlp.eval_points_nd(&q).unwrap()[0];
        let exact = p.exact_solution(&[q]).unwrap()[0].0;
        assert!((u - exact).abs() < 0.1, "{sched}: u {u} vs {exact}");
    }
}
