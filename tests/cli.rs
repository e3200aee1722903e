//! End-to-end tests of the `mspinn` binary: what a user types, what lands on disk.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{fresh_dir, mspinn};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mspinn-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_png(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

fn is_svg(p: &Path) -> bool {
    std::fs::read_to_string(p).is_ok_and(|s| s.contains("<svg") && s.contains("</svg>"))
}

#[test]
fn help_teaches_and_info_runs() {
    let o = mspinn(&["--help"]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for cmd in ["solve", "train", "ntk", "freq"] {
        assert!(s.contains(cmd), "--help lacks {cmd}");
    }
    let o = mspinn(&["info"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("features: cuda="));
}

#[test]
fn solve_writes_reference_and_homogenised_solution() {
    let out = tmp("solve");
    let o = mspinn(&[
        "solve",
        "--preset",
        "twoscale-darcy",
        "--eps",
        "1/32",
        "--points",
        "201",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("solution.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("x,u,u_bar"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 201);
    // The reference solution is eq. (25); check it in closed form at every point.
    let eps = 1.0 / 32.0;
    let pi = std::f64::consts::PI;
    for r in &rows {
        let x = r[0];
        let u = (2.0 * x).sin() + eps * (x / eps).sin() - eps / pi * (pi / eps).sin() * x;
        assert!((r[1] - u).abs() < 1e-9, "u({x}) = {} vs {u}", r[1]);
        assert!(r[2].is_finite());
    }
    assert!(is_png(&out.join("solution.png")) && is_svg(&out.join("solution.svg")));
}

#[test]
fn solve_reads_a_toml_problem_file() {
    let dir = tmp("toml");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("p.toml");
    // −u'' = 1 on (0, 1), u(0) = 0, u(1) = 1: u = x + x(1 − x)/2.
    std::fs::write(
        &cfg,
        "[problem]\nkind = \"poisson\"\ndomain = [0, 1]\nforcing = \"1\"\nboundary = [0, 1]\n",
    )
    .unwrap();
    let out = dir.join("out");
    let o = mspinn(&[
        "solve",
        "--config",
        cfg.to_str().unwrap(),
        "--points",
        "11",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("solution.csv")).unwrap();
    for l in csv.lines().skip(1) {
        let v: Vec<f64> = l.split(',').map(|t| t.parse().unwrap()).collect();
        let want = v[0] + v[0] * (1.0 - v[0]) / 2.0;
        assert!((v[1] - want).abs() < 1e-12);
    }
}

#[test]
fn bad_input_is_an_error_that_names_the_field() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["solve", "--preset", "twoscale-darcy", "--eps", "0"],
            "eps = 0",
        ),
        (
            &["solve", "--preset", "twoscale-darcy", "--eps", "1/0"],
            "zero",
        ),
        (&["solve", "--preset", "no-such"], "twoscale-darcy"),
        (&["ntk", "--eps=-1/10", "--quiet"], "must be > 0"),
        (
            &["ntk", "--coef", "sin(2*pi*y)", "--eps", "1/10", "--quiet"],
            "x",
        ),
        (
            &["ntk", "--widths", "0", "--eps", "1/10", "--quiet"],
            "width",
        ),
        (
            &[
                "train",
                "--preset",
                "fig4-darcy",
                "--schedule",
                "10@abc",
                "--quiet",
            ],
            "learning rate",
        ),
        (
            &[
                "train",
                "--preset",
                "fig4-darcy",
                "--device",
                "cuda",
                "--quiet",
            ],
            "cuda",
        ),
    ];
    for (args, needle) in cases {
        let o = mspinn(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.starts_with("error:"), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
        assert!(e.contains(needle), "{args:?}: {e:?} lacks {needle:?}");
    }
}

#[test]
fn ntk_json_sweep_shows_the_eps_minus_two_law() {
    let out = tmp("ntk");
    let o = mspinn(&[
        "ntk",
        "--eps",
        "1/10:1/60:6",
        "--nc",
        "128",
        "--widths",
        "20",
        "--seeds",
        "2",
        "--json",
        "--out",
        out.to_str().unwrap(),
        "--full-spectrum",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let recs = doc["records"].as_array().unwrap();
    assert_eq!(recs.len(), 12);
    for r in recs {
        for k in [
            "eps",
            "nc",
            "np",
            "k_uu_fro",
            "k_bb_fro",
            "k_fro",
            "k_uu_eig_top",
            "k_uu_trace",
            "k_eig_top",
            "cond_nonzero",
            "scaling",
            "method",
            "seconds",
        ] {
            assert!(!r[k].is_null(), "record lacks {k}");
        }
        assert_eq!(r["scaling"], "appendix");
    }
    let fit = doc["fits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["quantity"] == "k_uu_fro")
        .unwrap();
    let slope = fit["slope"].as_f64().unwrap();
    assert!((-2.5..=-1.5).contains(&slope), "slope {slope}");
    for f in ["records.csv", "ntk.json"] {
        assert!(out.join(f).exists());
    }
    assert!(is_png(&out.join("ntk_scaling.png")) && is_svg(&out.join("ntk_scaling.svg")));
    assert!(is_png(&out.join("ntk_spectrum.png")));
}

#[test]
fn train_writes_a_complete_run_folder_and_resumes() {
    let out = tmp("train");
    let o = mspinn(&[
        "train",
        "--preset",
        "fig4-poisson",
        "--trials",
        "2",
        "--widths",
        "12,12",
        "--nc",
        "64",
        "--schedule",
        "60@1e-2,lbfgs:20",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    for k in [
        "max_error_mean_network",
        "mean_variance",
        "trials",
        "rel_l2",
        "rel_linf",
        "max_error_vs_homogenized",
        "seconds",
    ] {
        assert!(!r[k].is_null(), "result.json lacks {k}");
    }
    assert_eq!(r["trials"], 2);
    assert_eq!(r["rel_l2"].as_array().unwrap().len(), 2);
    for t in ["trial-000", "trial-001"] {
        assert!(out.join(t).join("metrics.csv").exists());
        assert!(out.join(t).join("weights.safetensors").exists());
        // The manifest names the weights it was committed with.
        let ck = out.join(t).join("checkpoints");
        let pos: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ck.join("checkpoint.json")).unwrap()).unwrap();
        let w = pos["weights"].as_str().unwrap();
        assert!(w.ends_with("checkpoint.safetensors") && ck.join(w).exists());
    }
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("60@1e-2") && cfg.contains("twoscale-poisson"));
    for p in ["solution", "error", "loss"] {
        assert!(is_png(&out.join(format!("{p}.png"))), "{p}.png");
        assert!(is_svg(&out.join(format!("{p}.svg"))), "{p}.svg");
    }
    // Resuming a finished run changes nothing and succeeds.
    let o = mspinn(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Resuming with appended phases runs them and records the longer schedule.
    let dir = out.to_str().unwrap();
    let o = mspinn(&[
        "train",
        "--resume",
        dir,
        "--schedule",
        "60@1e-2,lbfgs:20,lm:5",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("lbfgs:20,lm:5"), "{cfg}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["trials"], 2);
    // A schedule that rewrites what ran, or any other override, is refused with a reason.
    let o = mspinn(&["train", "--resume", dir, "--schedule", "30@1e-2", "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("may append phases"), "{}", stderr(&o));
    // More trials: the finished two are only evaluated (their weights stay bit-identical), the
    // third is trained with seed + 2.
    let w1 = std::fs::read(out.join("trial-001").join("weights.safetensors")).unwrap();
    let o = mspinn(&["train", "--resume", dir, "--trials", "3", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["trials"], 3);
    assert_eq!(r["seeds"], serde_json::json!([0, 1, 2]));
    assert!(out.join("trial-002").join("weights.safetensors").exists());
    // (The tensor data; the metadata's key order is a hash map's and may differ.)
    let data = |b: &[u8]| b[8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize..].to_vec();
    assert_eq!(
        data(&std::fs::read(out.join("trial-001").join("weights.safetensors")).unwrap()),
        data(&w1)
    );
    let o = mspinn(&["train", "--resume", dir, "--trials", "1", "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not drop them"), "{}", stderr(&o));
    let o = mspinn(&["train", "--resume", dir, "--nc", "32", "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--nc"), "{}", stderr(&o));
}

#[test]
fn train_records_the_error_history_through_every_phase() {
    let out = tmp("history");
    let o = mspinn(&[
        "train",
        "--preset",
        "fig4-poisson",
        "--trials",
        "1",
        "--widths",
        "8,8",
        "--nc",
        "48",
        "--schedule",
        "40@1e-2,lbfgs:60,lm:12",
        "--log-every",
        "10",
        "--lm-space",
        "sample",
        "--lm-damping",
        "identity",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let text = std::fs::read_to_string(out.join("trial-000").join("history.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let its: Vec<u64> = rows.iter().map(|r| r[0] as u64).collect();
    assert!(its.windows(2).all(|w| w[0] <= w[1]), "{its:?}");
    let lbfgs_iters = r["lbfgs_iterations"][0].as_u64().unwrap();
    assert!(lbfgs_iters > 10, "L-BFGS stopped after {lbfgs_iters}");
    // Rows inside the Adam phase, inside the L-BFGS phase and inside the LM phase.
    assert!(its.iter().any(|&i| i > 0 && i < 40));
    assert!(its.iter().any(|&i| i > 40 && i < 40 + lbfgs_iters));
    assert!(its.iter().any(|&i| i > 40 + lbfgs_iters));
    // Seconds grow with the iteration (L-BFGS rows are logged after its phase, with their time).
    let secs: Vec<f64> = rows.iter().map(|r| r[1]).collect();
    assert!(secs.windows(2).all(|w| w[0] <= w[1] + 1e-3), "{secs:?}");
    // The last probe saw the final network: its error is the one result.json reports.
    let last = rows.last().unwrap();
    let linf = r["rel_linf"][0].as_f64().unwrap();
    let l2 = r["rel_l2"][0].as_f64().unwrap();
    assert!(
        (last[2] - linf).abs() <= 1e-12 * linf,
        "{} vs {linf}",
        last[2]
    );
    assert!((last[3] - l2).abs() <= 1e-12 * l2, "{} vs {l2}", last[3]);
    assert!(is_png(&out.join("error_history.png")));
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("lm_space = \"sample\"") && cfg.contains("lm_damping = \"identity\""));

    // Two runs side by side (here the same one twice): plot, median CSV, a printed table.
    let stem = out.join("cmp");
    let run = out.to_str().unwrap();
    let o = mspinn(&[
        "compare",
        run,
        run,
        "--labels",
        "a,b",
        "--out",
        stem.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(is_png(&stem.with_extension("png")));
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert!(csv.starts_with("run0_iteration,run0_seconds,run0_rel_linf,run0_rel_l2,run1_"));
    let final_row: Vec<f64> = csv
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((final_row[2] - linf).abs() <= 1e-12 * linf);
    // The solution plots, and the median trial's error recomputed from predictions.csv equals
    // the one logged during training.
    assert!(is_png(&out.join("cmp-solutions.png")));
    assert!(is_png(&out.join("cmp-pointwise-error.png")));
    let text = String::from_utf8_lossy(&o.stdout);
    let from_predictions: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("a: median trial 0, rel. L∞ "))
        .unwrap_or_else(|| panic!("no median-trial line in {text}"))
        .parse()
        .unwrap();
    assert!(
        (from_predictions - linf).abs() <= 1e-12 * linf,
        "{from_predictions} vs {linf}"
    );
    let o = mspinn(&["compare", run, "--labels", "a,b"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--labels has 2 entries for 1 runs"),
        "{}",
        stderr(&o)
    );

    let o = mspinn(&[
        "train",
        "--preset",
        "fig4-poisson",
        "--lm-space",
        "cholesky",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("auto, parameter or sample"),
        "{}",
        stderr(&o)
    );
}

/// `mspinn bench --quick` runs every measurement and writes a CSV and a JSON that agree, with
/// positive times and FLOP rates, and the 4×40 network's 5041 parameters.
#[test]
fn bench_quick_writes_csv_and_json() {
    let out = tmp("bench");
    let o = mspinn(&[
        "bench",
        "--quick",
        "--sizes",
        "64",
        "--dense-sizes",
        "32",
        "--gram-sizes",
        "64",
        "--dtype",
        "f64",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("median ms"), "no table printed:\n{table}");
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let measures: Vec<&str> = rows.iter().map(|r| r[col("measure")].as_str()).collect();
    for m in [
        "gemm-candle",
        "gemm-faer",
        "adam",
        "lbfgs",
        "dense",
        "gram",
        "fig2a",
    ] {
        assert!(measures.contains(&m), "bench.csv lacks {m}: {measures:?}");
    }
    for r in &rows {
        assert_eq!(r.len(), header.len(), "ragged row {r:?}");
        let ms: f64 = r[col("median_ms")].parse().unwrap();
        let min: f64 = r[col("min_ms")].parse().unwrap();
        let gf: f64 = r[col("gflops")].parse().unwrap();
        assert!(ms > 0.0 && min > 0.0 && min <= ms, "times in {r:?}");
        assert!(gf > 0.0 && gf.is_finite(), "GFLOP/s in {r:?}");
        let pct: f64 = r[col("pct_peak")].parse().unwrap();
        assert!(pct > 0.0, "% of peak in {r:?}");
    }
    let adam = rows.iter().find(|r| r[col("measure")] == "adam").unwrap();
    assert_eq!(adam[col("nc")], "64");
    assert_eq!(adam[col("np")], "5041");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let recs = doc["records"].as_array().unwrap();
    assert_eq!(recs.len(), rows.len());
    assert!(recs.iter().all(|r| r["median_ms"].as_f64().unwrap() > 0.0));
    // The best gemm of a dtype is its peak: 100 % by construction.
    let best = recs
        .iter()
        .filter(|r| r["measure"].as_str().unwrap().starts_with("gemm"))
        .map(|r| r["pct_peak"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!((best - 100.0).abs() < 1e-9);
    let o = mspinn(&["bench", "--only", "adam,nonsense", "--quick"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--only"), "{}", stderr(&o));
    std::fs::remove_dir_all(&out).ok();
}

/// `--device cuda` on every computing command, in a build without the `cuda` feature: an error
/// that says how to get a CUDA build, at once (before any solve or training), never a panic. In a
/// `cuda` build on a machine without a GPU the error names the missing device instead.
#[test]
fn device_cuda_is_a_clear_error_without_the_feature_or_a_gpu() {
    let cases: &[&[&str]] = &[
        &["train", "--preset", "fig4-darcy", "--quiet"],
        &["ntk", "--eps", "1/10", "--quiet"],
        &["freq", "--iters", "10"],
        &["reproduce", "--quick", "--only", "fig2a"],
        &["gpu-check"],
    ];
    for args in cases {
        let mut full: Vec<&str> = args.to_vec();
        if args[0] != "gpu-check" {
            full.extend(["--device", "cuda:0"]);
        }
        let t = std::time::Instant::now();
        let o = mspinn(&full);
        let e = stderr(&o);
        if cfg!(feature = "cuda") && o.status.success() {
            continue; // a machine with a GPU
        }
        assert_eq!(o.status.code(), Some(1), "{full:?}: {e}");
        assert!(e.starts_with("error: --device cuda"), "{full:?}: {e}");
        assert!(!e.contains("panicked"), "{full:?}: {e}");
        let needle = if cfg!(feature = "cuda") {
            "no CUDA device 0 found"
        } else {
            "built without the `cuda` feature; rebuild with scripts/install-cuda-toolchain.sh && cargo build --release --features cuda"
        };
        assert!(e.contains(needle), "{full:?}: {e:?} lacks {needle:?}");
        assert!(t.elapsed().as_secs() < 20, "{full:?} worked before failing");
    }
    let o = mspinn(&["info"]);
    let s = String::from_utf8_lossy(&o.stdout);
    if !cfg!(feature = "cuda") {
        assert!(s.contains("features: cuda=no"), "{s}");
        assert!(s.contains("built without the `cuda` feature"), "{s}");
    }
}

/// The GPU check's own logic, on the CPU against itself (no GPU in CI): the same seed must give
/// the same network and points on both sides, so every comparison passes with an error of zero,
/// and the table has every quantity of both dtypes.
#[test]
fn gpu_check_cpu_against_cpu_passes_every_row() {
    let json = fresh_dir("gpu-check-json").join("check.json");
    let o = mspinn(&[
        "gpu-check",
        "--device",
        "cpu",
        "--nc",
        "200",
        "--widths",
        "40,40,40,40",
        "--seed",
        "7",
        "--json",
        json.to_str().unwrap(),
    ]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{s}\n{}", stderr(&o));
    assert!(s.contains("seed 7") && s.contains("N_p = 5041"), "{s}");
    let quantities = [
        "u",
        "u'",
        "u''",
        "residual",
        "wr^2/2",
        "loss",
        "gradient",
        "|K_uu|_F",
        "gpu:loss",
        "gpu:grad",
        "gpu:resid",
        "gpu:J",
        "gpu:|K_uu|",
        "gpu:adam",
        "gpu:adam-v",
    ];
    for dtype in ["f64", "f32"] {
        // The LM step is compared in f64 only (f32's last bits, amplified by the normal
        // equations' conditioning, are no test of the engine).
        let lm = (dtype == "f64").then_some("gpu:lm-step");
        for q in quantities.into_iter().chain(lm) {
            let row = s
                .lines()
                .find(|l| l.starts_with(dtype) && l.split_whitespace().nth(1) == Some(q))
                .unwrap_or_else(|| panic!("no {dtype} {q} row in\n{s}"));
            let cols: Vec<&str> = row.split_whitespace().collect();
            let rel: f64 = cols[cols.len() - 3].parse().expect("a relative error");
            assert_eq!(rel, 0.0, "cpu vs cpu must agree exactly: {row}");
            assert!(row.ends_with("PASS"), "{row}");
        }
    }
    assert!(s.contains("gpu-check: PASS (31 of 31 comparisons)"), "{s}");
    assert!(!s.contains("f32   gpu:lm-step"), "{s}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["pass"], true);
    assert_eq!(doc["seed"], 7);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 31);
    assert!(rows
        .iter()
        .all(|r| r["rel_error"] == 0.0 && r["pass"] == true));
}

/// A bad option of the GPU check is an error naming it, not a panic.
#[test]
fn gpu_check_rejects_bad_options() {
    for (args, needle) in [
        (&["gpu-check", "--device", "cpu", "--nc", "0"][..], "--nc"),
        (
            &["gpu-check", "--device", "cpu", "--dtypes", "f16"],
            "--dtypes",
        ),
        (
            &["gpu-check", "--device", "cpu", "--widths", "0"],
            "--widths",
        ),
        (
            &["gpu-check", "--device", "tpu"],
            "expected cpu, cuda or cuda:N",
        ),
    ] {
        let o = mspinn(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
        assert!(
            e.contains(needle) && !e.contains("panicked"),
            "{args:?}: {e}"
        );
    }
}

// ---- Run folders, histories, configs and sizes made safe (issue 21) ----

/// A background `mspinn` (stdout and stderr captured).
fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mspinn"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// The iterations (first column) of a CSV with a header.
fn iterations(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect()
}

/// Waits (at most 60 s) until `cond` holds; false if the child ended first.
fn wait_until(child: &mut Child, cond: impl Fn() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if cond() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return cond();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Every log point 0, every, 2·every, … up to the last (which may be the run's end), once.
fn assert_unbroken(its: &[u64], every: u64, last: u64) {
    assert!(!its.is_empty());
    assert_eq!(its[0], 0, "{its:?}");
    assert_eq!(*its.last().unwrap(), last, "{its:?}");
    for w in its.windows(2) {
        assert!(w[1] > w[0], "iteration {} repeated or out of order", w[1]);
        assert!(
            w[1] - w[0] == every || w[1] == last,
            "rows missing between {} and {}",
            w[0],
            w[1]
        );
    }
}

/// A small, slow-enough training run into `out` (20 000 Adam steps, a row every 10).
fn long_run(out: &Path, seed: &str) -> Vec<String> {
    [
        "train",
        "--preset",
        "fig4-poisson",
        "--trials",
        "1",
        "--widths",
        "16,16",
        "--nc",
        "128",
        "--schedule",
        "20000@1e-3",
        "--log-every",
        "10",
        "--checkpoint-every",
        "50",
        "--seed",
        seed,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_second_run_on_a_busy_folder_is_refused_at_once_with_the_holders_pid() {
    let out = tmp("race");
    let mut first = spawn(&strs(&long_run(&out, "1")));
    let trial = out.join("trial-000");
    assert!(
        wait_until(&mut first, || iterations(&trial.join("metrics.csv")).len()
            > 2),
        "the first run never logged"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended too soon for the test"
    );
    let t = Instant::now();
    let second = mspinn(&strs(&long_run(&out, "2")));
    assert!(!second.status.success());
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let e = stderr(&second);
    assert!(
        e.contains("in use") && e.contains(&format!("pid {}", first.id())),
        "{e}"
    );
    // The first run finishes, and the folder is its alone: its seed, its rows only.
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("seed = 1"), "{cfg}");
    assert_unbroken(&iterations(&trial.join("metrics.csv")), 10, 20000);
    assert_unbroken(&iterations(&trial.join("history.csv")), 10, 20000);
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["seeds"], serde_json::json!([1]));
    // No fixed-name temporary files are left to collide on.
    assert!(!trial.join("checkpoints").join("checkpoint.tmp").exists());
}

#[test]
fn a_folder_that_holds_a_run_is_refused_unless_overwrite() {
    let out = tmp("overwrite");
    let dir = out.to_str().unwrap();
    let run = |trials: &str, widths: &str, extra: &[&str]| {
        let mut a = vec![
            "train",
            "--preset",
            "fig4-poisson",
            "--trials",
            trials,
            "--widths",
            widths,
            "--nc",
            "32",
            "--schedule",
            "10@1e-2",
            "--quiet",
            "--out",
            dir,
        ];
        a.extend_from_slice(extra);
        mspinn(&a)
    };
    let o = run("3", "6", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("1", "10", &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("already holds a run") && e.contains("--overwrite"),
        "{e}"
    );
    assert!(
        out.join("trial-002").exists(),
        "a refused run must not touch the folder"
    );
    let o = run("1", "10", &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("trial-001").exists() && !out.join("trial-002").exists());
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["trials"], 1);
}

#[test]
fn kill_9_then_resume_gives_an_unbroken_history() {
    let out = tmp("kill9");
    let trial = out.join("trial-000");
    let mut child = spawn(&strs(&long_run(&out, "0")));
    assert!(
        wait_until(&mut child, || iterations(&trial.join("metrics.csv"))
            .last()
            .is_some_and(|&i| i >= 1200)),
        "the run never got to iteration 1200"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended too soon for the test"
    );
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let o = mspinn(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --log-every 10 was kept by the resume (it is in config.toml), and no row was lost or
    // repeated in either file.
    assert_unbroken(&iterations(&trial.join("metrics.csv")), 10, 20000);
    assert_unbroken(&iterations(&trial.join("history.csv")), 10, 20000);
}

#[test]
fn sigint_writes_a_checkpoint_and_exits_130_with_the_resume_command() {
    let out = tmp("sigint");
    let trial = out.join("trial-000");
    let mut child = spawn(&strs(&long_run(&out, "0")));
    assert!(
        wait_until(&mut child, || iterations(&trial.join("metrics.csv")).len()
            > 20),
        "the run never logged"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended too soon for the test"
    );
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("mspinn train --resume {}", out.display())),
        "{e}"
    );
    assert!(!trial.join("weights.safetensors").exists());
    let o = mspinn(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_unbroken(&iterations(&trial.join("metrics.csv")), 10, 20000);
    assert_unbroken(&iterations(&trial.join("history.csv")), 10, 20000);
}

#[test]
fn phase_boundaries_do_not_repeat_rows() {
    let out = tmp("boundaries");
    let o = mspinn(&[
        "train",
        "--preset",
        "fig4-poisson",
        "--trials",
        "1",
        "--widths",
        "6",
        "--nc",
        "32",
        "--schedule",
        "30@1e-2,30@1e-3,lbfgs:5",
        "--log-every",
        "10",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["metrics.csv", "history.csv"] {
        let its = iterations(&out.join("trial-000").join(f));
        assert!(its.windows(2).all(|w| w[1] > w[0]), "{f}: {its:?}");
        assert!(its.contains(&30) && its.contains(&60), "{f}: {its:?}");
    }
    // lbfgs:5 runs (and reports) at most 5 iterations, not one fewer.
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let n = r["lbfgs_iterations"][0].as_u64().unwrap();
    assert!(
        n <= 5 && r["iterations"][0].as_u64().unwrap() == 60 + n,
        "{r}"
    );
}

#[test]
fn config_typos_are_refused_with_the_nearest_name_and_optional_fields_are_optional() {
    let dir = tmp("strict");
    std::fs::create_dir_all(&dir).unwrap();
    let problem = "[problem]\npreset = \"twoscale-poisson\"\neps = \"1/8\"\n";
    let cases = [
        ("[trainig]\ntrials = 1\n", "did you mean `training`"),
        ("[network]\nwidht = [8]\n", "did you mean `widths`"),
        (
            "[points]\nn = 32\nknd = \"random\"\n",
            "did you mean `kind`",
        ),
        ("[training]\nlbfgs_memory = 0\n", "lbfgs_memory"),
    ];
    for (k, (table, want)) in cases.iter().enumerate() {
        let f = dir.join(format!("bad{k}.toml"));
        std::fs::write(&f, format!("{problem}{table}")).unwrap();
        let o = mspinn(&[
            "train",
            "--config",
            f.to_str().unwrap(),
            "--quiet",
            "--out",
            dir.join(format!("run{k}")).to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "{table}");
        assert!(stderr(&o).contains(want), "{table}: {}", stderr(&o));
    }
    // As the README says: every field under [network] (and the others) is optional.
    let f = dir.join("widths-only.toml");
    std::fs::write(
        &f,
        format!("{problem}[network]\nwidths = [8]\n[points]\nn = 32\n[training]\nschedule = \"10@1e-2\"\ntrials = 1\n"),
    )
    .unwrap();
    let o = mspinn(&[
        "train",
        "--config",
        f.to_str().unwrap(),
        "--quiet",
        "--out",
        dir.join("ok").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // solve reads the same file and refuses the same typos.
    let o = mspinn(&[
        "solve",
        "--config",
        dir.join("bad0.toml").to_str().unwrap(),
        "--out",
        dir.join("solve").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("did you mean `training`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn absurd_sizes_are_refused_at_once_naming_the_option() {
    let out = tmp("sizes");
    let o_ = out.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "train",
                "--preset",
                "fig4-poisson",
                "--nc",
                "1000000000000",
                "--quiet",
                "--out",
                o_,
            ],
            "--nc",
        ),
        (
            &[
                "train",
                "--preset",
                "fig4-poisson",
                "--widths",
                "100000,100000",
                "--quiet",
                "--out",
                o_,
            ],
            "widths",
        ),
        (&["ntk", "--nc", "1e20", "--json"], "--nc"),
        (&["ntk", "--nc-eps2", "inf", "--json"], "--nc-eps2"),
        (
            &[
                "solve",
                "--preset",
                "twoscale-darcy",
                "--points",
                "1000000000000",
                "--out",
                o_,
            ],
            "--points",
        ),
        (
            &["bench", "--quick", "--threads", "100000", "--out", o_],
            "--threads",
        ),
    ];
    for (args, option) in cases {
        let t = Instant::now();
        let o = mspinn(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(option), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{args:?}: {:?}",
            t.elapsed()
        );
    }
    let o = mspinn(&[
        "bench",
        "--quick",
        "--only",
        "dense",
        "--dense-sizes",
        "10000000",
        "--out",
        o_,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--dense-sizes"), "{}", stderr(&o));
    let o = mspinn(&["ntk", "--nc", "1e12", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("needs ~"), "{}", stderr(&o));
}

#[test]
fn a_seed_that_would_wrap_is_refused() {
    let out = tmp("seedwrap");
    let max = u64::MAX.to_string();
    let o = mspinn(&[
        "train",
        "--preset",
        "fig4-poisson",
        "--trials",
        "2",
        "--seed",
        &max,
        "--widths",
        "6",
        "--nc",
        "32",
        "--schedule",
        "10@1e-2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--seed"), "{}", stderr(&o));
}
