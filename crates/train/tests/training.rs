//! The training loop's contracts: it trains, it resumes exactly, it stops cleanly on divergence.

use candle_core::{DType, Device};
use mspinn_model::evaluator::{CpuEvaluator, Evaluator};
use mspinn_model::{Activation, EngineOptions, Init, Mlp, MlpConfig, ResidualSet};
use mspinn_problem::{collocation, PointSpec, Problem};
use mspinn_train::{Schedule, TrainError, TrainOptions, Trainer};

/// The fp-poisson problem (eq. 4) on n points, or with its forcing replaced by `forcing`.
fn poisson_set_with(forcing: Option<&str>, n: usize) -> ResidualSet {
    let mut p = Problem::preset("fp-poisson", None).unwrap();
    if let Some(f) = forcing {
        p.forcing = mspinn_problem::ScalarFn::parse(f, "x").unwrap();
    }
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

fn poisson_set(n: usize) -> ResidualSet {
    poisson_set_with(None, n)
}

fn smooth_poisson_set(n: usize) -> ResidualSet {
    // −u'' = sin x on (−π, π), u = sin x: a few hundred steps suffice.
    poisson_set_with(Some("sin(x)"), n)
}

/// The CPU engine with default options.
fn cpu(mlp: &Mlp) -> CpuEvaluator {
    CpuEvaluator::new(mlp, EngineOptions::default()).unwrap()
}

fn net(seed: u64) -> Mlp {
    let cfg = MlpConfig::new(vec![16, 16], Activation::Tanh, Init::GlorotNormal, seed);
    Mlp::new(cfg, DType::F64, &Device::Cpu).unwrap()
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mspinn-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn small_poisson_pinn_loss_falls_a_thousandfold() {
    let set = smooth_poisson_set(64);
    let mlp = net(1);
    let initial = cpu(&mlp).loss(&mlp, &set).unwrap().total;
    let schedule: Schedule = "200@1e-2,lbfgs:300".parse().unwrap();
    let out = Trainer::new(&mlp, &set, &schedule, TrainOptions::default())
        .run(false)
        .unwrap();
    let fin = out.final_loss.total;
    assert!(out.completed);
    assert!(fin.is_finite());
    assert!(
        fin <= initial * 1e-3,
        "loss went from {initial:e} to only {fin:e}"
    );
    assert_eq!(cpu(&mlp).loss(&mlp, &set).unwrap().total, fin);
    assert!(out.lbfgs[0].evaluations > 0);
}

#[test]
fn resume_after_interruption_is_bit_identical() {
    let set = poisson_set(48);
    let schedule: Schedule = "30@1e-3,25@1e-4".parse().unwrap();
    let opts = |dir: &std::path::Path, stop: Option<u64>| TrainOptions {
        run_dir: Some(dir.to_path_buf()),
        checkpoint_every: 7,
        log_every: 5,
        stop_after: stop,
        ..Default::default()
    };
    // Uninterrupted.
    let d1 = tmpdir("uninterrupted");
    let a = net(3);
    Trainer::new(&a, &set, &schedule, opts(&d1, None))
        .run(false)
        .unwrap();
    // Interrupted inside the first phase, then again inside the second, each time resumed from
    // the checkpoint on disk by a fresh network object (as a new process would).
    let d2 = tmpdir("interrupted");
    let b = net(3);
    let o = Trainer::new(&b, &set, &schedule, opts(&d2, Some(17)))
        .run(false)
        .unwrap();
    assert!(!o.completed);
    // Turn the checkpoint into the format written before the manifest named its weights
    // (a fixed checkpoint.safetensors, no last_logged): it still resumes.
    let ck = d2.join("checkpoints");
    let mut pos: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ck.join("checkpoint.json")).unwrap()).unwrap();
    let obj = pos.as_object_mut().unwrap();
    let w = obj.remove("weights").unwrap();
    obj.remove("last_logged");
    std::fs::rename(
        ck.join(w.as_str().unwrap()),
        ck.join("checkpoint.safetensors"),
    )
    .unwrap();
    std::fs::write(ck.join("checkpoint.json"), pos.to_string()).unwrap();
    let b2 = net(99); // different initial weights: everything must come from the checkpoint
    let o = Trainer::new(&b2, &set, &schedule, opts(&d2, Some(41)))
        .run(true)
        .unwrap();
    assert!(!o.completed);
    let b3 = net(98);
    let o = Trainer::new(&b3, &set, &schedule, opts(&d2, None))
        .run(true)
        .unwrap();
    assert!(o.completed);
    assert_eq!(o.iterations, 55);
    let (pa, pb) = (a.flat_params().unwrap(), b3.flat_params().unwrap());
    assert!(
        pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()),
        "resumed weights differ"
    );
    // The metrics file has the whole history once: the uninterrupted run's rows, no row
    // repeated (not at the resumes, not at the phase boundary) and none lost.
    let its = |d: &std::path::Path| -> Vec<u64> {
        std::fs::read_to_string(d.join("metrics.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(its(&d2), its(&d1));
    assert_eq!(its(&d1), vec![0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]);
    // A resume under another schedule is refused.
    let other: Schedule = "10@1e-3".parse().unwrap();
    assert!(Trainer::new(&net(3), &set, &other, opts(&d2, None))
        .run(true)
        .is_err());
}

/// Sets (or, with None, removes as in older checkpoints) the recorded training time.
fn set_checkpoint_seconds(dir: &std::path::Path, seconds: Option<f64>) {
    let path = dir.join("checkpoints").join("checkpoint.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let obj = v.as_object_mut().unwrap();
    match seconds {
        Some(t) => obj.insert("seconds".into(), t.into()),
        None => obj.remove("seconds"),
    };
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
}

/// (iteration, seconds) of every metrics.csv row.
fn metrics_seconds(dir: &std::path::Path) -> Vec<(u64, f64)> {
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[f.len() - 1].parse().unwrap())
        })
        .collect()
}

#[test]
fn a_finished_run_resumed_with_appended_phases_equals_the_longer_run() {
    // `30@1e-3,lm:4` then resumed as `30@1e-3,lm:4,lm:3` must be the uninterrupted longer run,
    // bit for bit: the appended phase starts from the checkpointed weights, nothing is redone.
    let set = smooth_poisson_set(40);
    let short: Schedule = "30@1e-3,lm:4".parse().unwrap();
    let long: Schedule = "30@1e-3,lm:4,lm:3".parse().unwrap();
    assert!(long.extends(&short) && !short.extends(&long));
    let opts = |dir: &std::path::Path| TrainOptions {
        run_dir: Some(dir.to_path_buf()),
        checkpoint_every: 10,
        log_every: 5,
        ..Default::default()
    };
    let d1 = tmpdir("long");
    let a = net(4);
    let oa = Trainer::new(&a, &set, &long, opts(&d1)).run(false).unwrap();
    let d2 = tmpdir("short-then-long");
    let b = net(4);
    Trainer::new(&b, &set, &short, opts(&d2))
        .run(false)
        .unwrap();
    // Pretend the first part took 1000 s: the resumed part's clock must continue from there.
    set_checkpoint_seconds(&d2, Some(1000.0));
    let b2 = net(77);
    let ob = Trainer::new(&b2, &set, &long, opts(&d2)).run(true).unwrap();
    assert!(oa.completed && ob.completed);
    assert_eq!(
        ob.second_order.len(),
        1,
        "only the appended LM phase runs on resume"
    );
    let (pa, pb) = (a.flat_params().unwrap(), b2.flat_params().unwrap());
    assert!(
        pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()),
        "extended run differs from the uninterrupted one"
    );
    let first_part = (30 + 4) as u64;
    let rows = metrics_seconds(&d2);
    assert!(rows.iter().any(|&(it, _)| it > first_part));
    // (Iteration 34 is logged twice: at the end of the first part and the start of the second.)
    for &(it, t) in rows.iter().filter(|&&(it, _)| it != first_part) {
        assert!(
            (it > first_part) == (t >= 1000.0),
            "iteration {it} at {t} s: the clock did not continue from the checkpoint"
        );
    }
    assert!(ob.seconds >= 1000.0);
    // A checkpoint written before it recorded its time: the clock is read from metrics.csv.
    let d3 = tmpdir("old-checkpoint");
    Trainer::new(&net(4), &set, &short, opts(&d3))
        .run(false)
        .unwrap();
    set_checkpoint_seconds(&d3, None);
    let csv = std::fs::read_to_string(d3.join("metrics.csv")).unwrap();
    let shifted: Vec<String> = csv
        .lines()
        .enumerate()
        .map(|(k, l)| match (k, l.rsplit_once(',')) {
            (k, Some((head, t))) if k > 0 => {
                format!("{head},{}", 500.0 + t.parse::<f64>().unwrap())
            }
            _ => l.to_string(),
        })
        .collect();
    std::fs::write(d3.join("metrics.csv"), shifted.join("\n") + "\n").unwrap();
    Trainer::new(&net(4), &set, &long, opts(&d3))
        .run(true)
        .unwrap();
    let rows = metrics_seconds(&d3);
    assert!(rows.iter().all(|&(_, t)| t >= 500.0), "{rows:?}");
    // The checkpoint now belongs to the longer schedule: resuming it again under the long
    // schedule is a no-op, under the short one (which it extends) is refused.
    assert!(Trainer::new(&net(4), &set, &long, opts(&d2))
        .run(true)
        .is_ok());
    assert!(Trainer::new(&net(4), &set, &short, opts(&d2))
        .run(true)
        .is_err());
    // Changing a phase that already ran is refused.
    let changed: Schedule = "30@1e-3,lm:5,lm:3".parse().unwrap();
    assert!(Trainer::new(&net(4), &set, &changed, opts(&d2))
        .run(true)
        .is_err());
}

#[test]
fn divergence_stops_with_iteration_and_keeps_checkpoint() {
    let set = poisson_set(32);
    let mlp = net(5);
    let d = tmpdir("diverge");
    // Adam steps are ~lr in size: at 1e200 the weights overflow the square of the residual.
    let schedule: Schedule = "500@1e200".parse().unwrap();
    let o = TrainOptions {
        run_dir: Some(d.clone()),
        checkpoint_every: 1,
        ..Default::default()
    };
    let err = Trainer::new(&mlp, &set, &schedule, o)
        .run(false)
        .unwrap_err();
    match &err {
        TrainError::Diverged {
            iteration,
            term,
            checkpoint,
            ..
        } => {
            assert!(*iteration > 0 && *iteration < 500, "iteration {iteration}");
            assert!(term.starts_with("loss"), "{term}");
            assert!(checkpoint.ends_with("checkpoint.safetensors"));
            // The checkpoint on disk holds finite weights from before the blow-up.
            let m = net(0);
            mspinn_train::checkpoint::load(&d.join("checkpoints"), &m).unwrap();
            assert!(m.flat_params().unwrap().iter().all(|v| v.is_finite()));
            assert!(cpu(&m).loss(&m, &set).unwrap().total.is_finite());
        }
        other => panic!("expected Diverged, got {other}"),
    }
    assert!(err.to_string().contains("iteration"));
}

#[test]
fn lbfgs_n_runs_and_reports_n_iterations() {
    // Far from converged after 4 iterations: the cap, not a tolerance, ends the run.
    let set = poisson_set(48);
    let mlp = net(5);
    let opts = mspinn_train::lbfgs::LbfgsOptions {
        max_iters: 4,
        tol_grad: 0.0,
        tol_cost: 0.0,
        ..Default::default()
    };
    let mut ev = cpu(&mlp);
    let out = mspinn_train::lbfgs::run_lbfgs(&mut ev, &mlp, &set, &opts, &|_, _| {}).unwrap();
    assert_eq!(out.iterations, 4, "{}", out.reason);
}

/// The GPU engine's training loop (here `gpu-host`: its step on the host backend, Adam resident
/// in its buffers) resumes exactly like the host loop: interrupted inside the first Adam phase
/// and again inside the second, resumed by fresh networks, it ends on the uninterrupted run's
/// weights bit for bit with the same history; and it follows the CPU engine's trajectory to
/// rounding (the two sum in different orders).
#[test]
fn gpu_engine_training_resumes_exactly_and_follows_the_cpu_engine() {
    use mspinn_model::{Engine, EngineConfig};
    let set = poisson_set(48);
    let schedule: Schedule = "30@1e-3,25@1e-4".parse().unwrap();
    let opts = |dir: &std::path::Path, stop: Option<u64>, engine: Engine| TrainOptions {
        run_dir: Some(dir.to_path_buf()),
        checkpoint_every: 7,
        log_every: 5,
        stop_after: stop,
        engine: EngineConfig::new(Some(engine), Default::default()),
        ..Default::default()
    };
    let d1 = tmpdir("gpu-uninterrupted");
    let a = net(3);
    Trainer::new(&a, &set, &schedule, opts(&d1, None, Engine::GpuHost))
        .run(false)
        .unwrap();
    let d2 = tmpdir("gpu-interrupted");
    for (k, stop) in [Some(17), Some(41), None].into_iter().enumerate() {
        let b = net(90 + k as u64); // the checkpoint's weights replace these on resume
        if k == 0 {
            b.set_flat_params(&net(3).flat_params().unwrap()).unwrap();
        }
        let o = Trainer::new(&b, &set, &schedule, opts(&d2, stop, Engine::GpuHost))
            .run(k > 0)
            .unwrap();
        assert_eq!(o.completed, stop.is_none());
        if stop.is_none() {
            assert_eq!(o.iterations, 55);
            assert_eq!(
                b.flat_params().unwrap(),
                a.flat_params().unwrap(),
                "resumed weights differ"
            );
        }
    }
    let metrics = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(d.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_owned()) // drop the seconds column
            .collect()
    };
    assert_eq!(metrics(&d2), metrics(&d1));

    // The CPU engine on the same schedule: the same losses to rounding.
    let d3 = tmpdir("gpu-vs-cpu");
    let c = net(3);
    Trainer::new(&c, &set, &schedule, opts(&d3, None, Engine::Cpu))
        .run(false)
        .unwrap();
    let losses = |d: &std::path::Path| -> Vec<f64> {
        std::fs::read_to_string(d.join("metrics.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
            .collect()
    };
    let (g, h) = (losses(&d1), losses(&d3));
    assert_eq!(g.len(), h.len());
    // At θ₀ the two engines agree to rounding. After that Adam divides every gradient component
    // by its own running scale, so a component that is rounding noise in both engines
    // (|g_i| ≈ 1e-12·max|g|) moves its parameter by up to lr in a direction either engine may
    // pick: measured 7e-11 in the loss after 5 steps, 8e-10 after 55 (lr = 1e-3, then 1e-4).
    assert!(
        (g[0] - h[0]).abs() <= 1e-14 * h[0],
        "at θ₀: {} vs {}",
        g[0],
        h[0]
    );
    for (x, y) in g.iter().zip(&h) {
        assert!((x - y).abs() <= 1e-8 * y.abs(), "gpu-host {x} vs cpu {y}");
    }
}

/// Without a run folder every row stays in memory: the outcome holds the whole history, equal
/// (but for the clock) to the metrics.csv of the same run with a folder. Rows are flushed every
/// 64 and at each checkpoint, so 300 iterations logged every iteration cross both.
#[test]
fn without_a_run_folder_the_outcome_holds_every_row() {
    let set = smooth_poisson_set(32);
    let schedule: Schedule = "150@1e-3,150@1e-4".parse().unwrap();
    let opts = TrainOptions {
        log_every: 1,
        checkpoint_every: 50,
        ..Default::default()
    };
    let mem = Trainer::new(&net(4), &set, &schedule, opts.clone())
        .run(false)
        .unwrap();
    let dir = tmpdir("rows-in-memory");
    let disk = Trainer::new(
        &net(4),
        &set,
        &schedule,
        TrainOptions {
            run_dir: Some(dir.clone()),
            ..opts
        },
    )
    .run(false)
    .unwrap();
    let its: Vec<u64> = mem.rows.iter().map(|r| r.iteration).collect();
    assert_eq!(its, (0..=300).collect::<Vec<u64>>());
    assert_eq!(mem.rows.len(), disk.rows.len());
    for (m, d) in mem.rows.iter().zip(&disk.rows) {
        assert_eq!((m.iteration, m.loss, m.lr), (d.iteration, d.loss, d.lr));
    }
    let _ = std::fs::remove_dir_all(dir);
}
