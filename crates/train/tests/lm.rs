//! Second-order phases: LM reaches round-off on a tiny Poisson PINN, the damped Gauss–Newton
//! direction is the least-squares solution computed independently, the two solve spaces agree,
//! and the schedule and trainer know the `lm` / `gn` phases.

use candle_core::{DType, Device};
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;
use mspinn_model::evaluator::{CandleEvaluator, CpuEvaluator, Evaluator};
use mspinn_model::{Activation, EngineOptions, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{collocation, PointSpec, Problem, ScalarFn};
use mspinn_train::{
    gauss_newton_step, run_lm, Damping, LmOptions, Phase, Schedule, SolveSpace, TrainOptions,
    Trainer,
};

/// −u'' = sin x on (−π, π), u(±π) = 0 (exact u = sin x), on `n` equispaced points, λ = 10.
fn poisson_set(n: usize) -> ResidualSet {
    let mut p = Problem::preset("fp-poisson", None).unwrap();
    p.forcing = ScalarFn::parse("sin(x)", "x").unwrap();
    let x = collocation(p.domain, PointSpec::Endpoints(n)).unwrap();
    ResidualSet::new(
        &p.pde_rows(&x).unwrap(),
        &p.boundary_rows(),
        10.0,
        DType::F64,
        &Device::Cpu,
    )
    .unwrap()
}

/// The CPU engine with default options.
fn cpu(mlp: &Mlp) -> CpuEvaluator {
    CpuEvaluator::new(mlp, EngineOptions::default()).unwrap()
}

fn net(hidden: Vec<usize>, seed: u64) -> Mlp {
    let cfg = MlpConfig::new(hidden, Activation::Tanh, Init::GlorotNormal, seed);
    Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap()
}

fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// Ĵ = D^½ J and r̂ = D^½ r, computed here independently of the CPU engine LM runs on: J from
/// candle's batched sweep, r from the unfused candle expression over the jets.
fn weighted_system(mlp: &Mlp, set: &ResidualSet) -> (Mat<f64>, Vec<f64>) {
    let j = CandleEvaluator::new(mlp)
        .jacobian(mlp, set, 0..set.len())
        .unwrap();
    let j = mspinn_ntk::spectrum::to_faer(&j).unwrap();
    let r: Vec<f64> = set
        .residual(&mlp.jets(&set.x).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let s: Vec<f64> = set.host_w.iter().map(|w| w.sqrt()).collect();
    let jhat = Mat::from_fn(j.nrows(), j.ncols(), |i, k| s[i] * j[(i, k)]);
    let rhat = r.iter().zip(&s).map(|(r, s)| r * s).collect();
    (jhat, rhat)
}

/// max_k (ĴᵀĴ)_kk, the scale the damping is chosen against.
fn diag_max(jhat: &Mat<f64>) -> f64 {
    (0..jhat.ncols())
        .map(|k| (0..jhat.nrows()).map(|i| jhat[(i, k)].powi(2)).sum::<f64>())
        .fold(0.0, f64::max)
}

/// The interpolation regime (22 rows, 141 parameters), where a zero residual exists. With more
/// rows than the numerical rank of the Jacobian (a tanh network's singular values decay
/// exponentially: at 40 points about 20 of the 42 eigenvalues of ĴĴᵀ are below round-off) the
/// residual can no longer be corrected to first order and LM converges only linearly (5e-17 after
/// 10⁴ iterations at 40 points), so this test uses 20 points.
#[test]
fn lm_drives_a_tiny_poisson_pinn_to_round_off() {
    let set = poisson_set(20);
    let mlp = net(vec![10, 10], 7);
    let initial = cpu(&mlp).loss(&mlp, &set).unwrap().total;
    let opts = LmOptions {
        max_iters: 500,
        ..Default::default()
    };
    let mut seen = 0u64;
    let mut on_iter = |k: u64, mu: f64, t: &mspinn_model::LossTerms| {
        assert_eq!(k, seen, "iterations reported in order");
        assert!(mu > 0.0 && t.is_finite());
        seen += 1;
        Ok(())
    };
    let out = run_lm(&mut cpu(&mlp), &mlp, &set, &opts, &mut on_iter).unwrap();
    let fin = cpu(&mlp).loss(&mlp, &set).unwrap().total;
    eprintln!(
        "LM: {initial:e} -> {fin:e} in {} iterations ({} accepted, {:?} solve): {}",
        out.iterations, out.accepted, out.space, out.reason
    );
    assert_eq!(out.space, SolveSpace::Sample, "22 rows < 141 parameters");
    assert!(fin < 1e-20, "LM stopped at loss {fin:e}: {}", out.reason);
    assert!(out.iterations < opts.max_iters, "{}", out.reason);
    // The network holds the reported point, and the loss never went up. LM's residuals and loss
    // come from the same evaluator (the CPU engine) as `fin`, by the same arithmetic: the same
    // bits, even at a loss of 1e-30 where the residuals are round-off.
    assert_eq!(out.final_loss, fin);
    assert!(out.history.windows(2).all(|w| w[1].loss <= w[0].loss));
    assert_eq!(out.history.len() as u64, out.iterations);
    assert_eq!(seen, out.iterations + 1);
}

#[test]
fn gauss_newton_direction_is_the_damped_least_squares_solution() {
    let set = poisson_set(40);
    let mlp = net(vec![10, 10], 3);
    let (jhat, rhat) = weighted_system(&mlp, &set);
    let (n, np) = (jhat.nrows(), jhat.ncols());
    let mu = 1e-4 * diag_max(&jhat);
    // min_δ ‖[Ĵ; √μ I] δ + [r̂; 0]‖², by Householder QR of the stacked matrix: no normal equations.
    let sq = mu.sqrt();
    let a = Mat::from_fn(n + np, np, |i, k| {
        if i < n {
            jhat[(i, k)]
        } else if i - n == k {
            sq
        } else {
            0.0
        }
    });
    let b = Mat::from_fn(n + np, 1, |i, _| if i < n { -rhat[i] } else { 0.0 });
    let x = a.qr().solve_lstsq(&b);
    let reference: Vec<f64> = (0..np).map(|k| x[(k, 0)]).collect();
    for space in [SolveSpace::Parameter, SolveSpace::Sample] {
        let delta =
            gauss_newton_step(&mut cpu(&mlp), &mlp, &set, mu, space, Damping::Identity).unwrap();
        let e = rel_diff(&delta, &reference);
        assert!(e < 1e-10, "{space:?}: relative difference {e:e}");
    }
    // Marquardt scaling: min ‖[Ĵ; √μ diag(ĴᵀĴ)^½] δ + [r̂; 0]‖².
    let mu = 1e-3;
    let a = Mat::from_fn(n + np, np, |i, k| {
        if i < n {
            jhat[(i, k)]
        } else if i - n == k {
            let d: f64 = (0..n).map(|r| jhat[(r, k)].powi(2)).sum();
            (mu * d).sqrt()
        } else {
            0.0
        }
    });
    let x = a.qr().solve_lstsq(&b);
    let reference: Vec<f64> = (0..np).map(|k| x[(k, 0)]).collect();
    let delta = gauss_newton_step(
        &mut cpu(&mlp),
        &mlp,
        &set,
        mu,
        SolveSpace::Parameter,
        Damping::Marquardt,
    )
    .unwrap();
    let e = rel_diff(&delta, &reference);
    assert!(e < 1e-10, "Marquardt: relative difference {e:e}");
}

/// Both spaces solve the same system; the error of each is about κ(ĴᵀĴ + μM)·u, so μ is kept at
/// ≥ 1e-4 of the scale for a 1e-10 comparison.
#[test]
fn sample_and_parameter_space_solves_agree() {
    let set = poisson_set(40);
    let mlp = net(vec![10, 10], 11);
    let (jhat, _) = weighted_system(&mlp, &set);
    let scale = diag_max(&jhat);
    for (damping, mus) in [
        (
            Damping::Identity,
            [1e-4 * scale, 1e-1 * scale, 10.0 * scale],
        ),
        (Damping::Marquardt, [1e-4, 1e-1, 10.0]),
    ] {
        for mu in mus {
            let p = gauss_newton_step(
                &mut cpu(&mlp),
                &mlp,
                &set,
                mu,
                SolveSpace::Parameter,
                damping,
            )
            .unwrap();
            let s = gauss_newton_step(&mut cpu(&mlp), &mlp, &set, mu, SolveSpace::Sample, damping)
                .unwrap();
            let e = rel_diff(&s, &p);
            assert!(
                e < 1e-10,
                "{damping:?}, μ = {mu:e}: relative difference {e:e}"
            );
        }
    }
    // A bad μ is refused with a message, not a panic.
    let err = gauss_newton_step(
        &mut cpu(&mlp),
        &mlp,
        &set,
        -1.0,
        SolveSpace::Auto,
        Damping::Identity,
    );
    assert!(err.unwrap_err().to_string().contains("mu"));
}

#[test]
fn lm_phase_parses_and_round_trips() {
    let s: Schedule = "lm:50".parse().unwrap();
    assert_eq!(s.phases, vec![Phase::Lm { max_iters: 50 }]);
    assert_eq!(s.to_string(), "lm:50");
    assert_eq!(s.to_string().parse::<Schedule>().unwrap(), s);
    for bad in ["lm", "lm:", "lm:x", "lm:-1", "lm:2.5"] {
        assert!(bad.parse::<Schedule>().is_err(), "{bad:?} accepted");
    }
}

#[test]
fn trainer_runs_second_order_phases_and_logs_them() {
    let set = poisson_set(24);
    let mlp = net(vec![8, 8], 5);
    let dir = std::env::temp_dir().join(format!("mspinn-train-lm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schedule: Schedule = "20@1e-2,lm:15,gn:5".parse().unwrap();
    let opts = TrainOptions {
        run_dir: Some(dir.clone()),
        log_every: 4,
        ..Default::default()
    };
    let out = Trainer::new(&mlp, &set, &schedule, opts)
        .run(false)
        .unwrap();
    assert!(out.completed);
    assert_eq!(out.second_order.len(), 2);
    let (lm, gn) = (&out.second_order[0], &out.second_order[1]);
    assert_eq!((lm.method.as_str(), gn.method.as_str()), ("lm", "gn"));
    assert!(lm.iterations >= 1 && lm.iterations <= 15 && gn.iterations <= 5);
    assert_eq!(out.iterations, 20 + lm.iterations + gn.iterations);
    // The loss after the Adam phase is beaten by LM, and GN does not undo it.
    let after_adam = out
        .rows
        .iter()
        .rfind(|r| r.optimizer == "adam")
        .unwrap()
        .loss;
    assert!(
        lm.final_loss < 1e-2 * after_adam,
        "{after_adam:e} -> {:e}",
        lm.final_loss
    );
    assert!(gn.final_loss <= lm.final_loss);
    assert_eq!(
        cpu(&mlp).loss(&mlp, &set).unwrap().total,
        out.final_loss.total
    );
    // Rows: "lm" rows carry μ in the lr column, iterations never go backwards on disk.
    let lm_rows: Vec<_> = out.rows.iter().filter(|r| r.optimizer == "lm").collect();
    assert!(lm_rows.len() >= 2 && lm_rows.iter().all(|r| r.lr > 0.0));
    assert!(out.rows.iter().any(|r| r.optimizer == "gn"));
    assert!(out
        .rows
        .windows(2)
        .all(|w| w[0].iteration <= w[1].iteration));
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(csv.lines().any(|l| l.contains(",lm,")));
    // The outcome serialises (it goes into result.json).
    let json = serde_json::to_string(&out).unwrap();
    assert!(json.contains("\"second_order\""));
}

/// An LM phase stopped between two iterations (as SIGINT does, here through `stop_after`)
/// checkpoints the accepted iterate with the iterations done; the resume runs the rest of the
/// phase: every iteration is done once, the history never repeats or skips a logged row, and the
/// loss keeps falling.
#[test]
fn an_lm_phase_stopped_midway_resumes_with_its_remaining_iterations() {
    let set = poisson_set(24);
    let dir = std::env::temp_dir().join(format!("mspinn-train-lm-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schedule: Schedule = "20@1e-2,lm:40".parse().unwrap();
    let opts = |stop: Option<u64>| TrainOptions {
        run_dir: Some(dir.clone()),
        log_every: 5,
        stop_after: stop,
        lm: LmOptions {
            tol_grad: 0.0,
            tol_step: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let mlp = net(vec![8, 8], 5);
    let first = Trainer::new(&mlp, &set, &schedule, opts(Some(35)))
        .run(false)
        .unwrap();
    assert!(!first.completed);
    assert_eq!(first.iterations, 35, "stopped after LM iteration 15");
    let at_stop = first.final_loss.total;
    let resumed = net(vec![8, 8], 99); // the checkpoint's weights replace these
    let out = Trainer::new(&resumed, &set, &schedule, opts(None))
        .run(true)
        .unwrap();
    assert!(out.completed);
    assert_eq!(out.iterations, 60, "20 Adam + 15 + 25 LM iterations");
    assert!(
        out.final_loss.total < at_stop,
        "{} vs {at_stop}",
        out.final_loss.total
    );
    let its: Vec<u64> = out.rows.iter().map(|r| r.iteration).collect();
    assert!(
        its.windows(2).all(|w| w[0] < w[1]),
        "rows repeat or go back: {its:?}"
    );
    assert!(its.contains(&35) && its.contains(&60), "{its:?}");
}
