//! `mspinn sweep` end to end without Slurm: plan, local, status, merge, sharding, reruns and the
//! spec's errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::mspinn;

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir(&format!("sweep-{name}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let o = mspinn(args);
    assert!(o.status.success(), "mspinn {args:?} failed:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes `spec` and plans it into `root/plan`.
fn plan(root: &Path, spec: &str) -> PathBuf {
    let sp = root.join("spec.toml");
    std::fs::write(&sp, spec).unwrap();
    let dir = root.join("plan");
    ok(&["sweep", "plan", s(&sp), "--out", s(&dir)]);
    dir
}

/// results.csv as maps from column to cell.
fn results(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

/// The one record of a direct `mspinn ntk --json` run.
fn direct_ntk(args: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let mut a = vec!["ntk", "--json"];
    a.extend_from_slice(args);
    let doc: serde_json::Value = serde_json::from_str(&ok(&a)).unwrap();
    let recs = doc["records"].as_array().unwrap();
    assert_eq!(recs.len(), 1);
    recs[0].as_object().unwrap().clone()
}

/// A record's numeric fields as results.csv names them (lists as name_1, …; names that are grid
/// options get `_value`), seconds aside.
fn numbers(rec: &serde_json::Map<String, serde_json::Value>, grid: &[&str]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (k, v) in rec {
        if k == "seconds" {
            continue;
        }
        let name = |k: &str| {
            if grid.contains(&k) {
                format!("{k}_value")
            } else {
                k.to_string()
            }
        };
        match v {
            serde_json::Value::Number(n) => out.push((name(k), n.as_f64().unwrap())),
            serde_json::Value::Array(a) if a.len() <= 16 => {
                for (i, x) in a.iter().enumerate() {
                    out.push((format!("{k}_{}", i + 1), x.as_f64().unwrap()));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn a_2x2x2_ntk_sweep_equals_the_direct_runs() {
    let root = tmp("grid");
    let dir = plan(
        &root,
        "command = \"ntk\"\n[base]\nwidths = \"10\"\n[grid]\neps = [\"1/8\", \"1/16\"]\nnc = [32, 64]\nseed = [0, 1]\n",
    );
    let plan_text = std::fs::read_to_string(dir.join("plan.jsonl")).unwrap();
    assert_eq!(plan_text.lines().count(), 8);
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(
        entries.len(),
        2,
        "plan writes plan.jsonl and spec.toml only"
    );
    // Planning again is deterministic and leaves the folder as it was.
    ok(&[
        "sweep",
        "plan",
        s(&root.join("spec.toml")),
        "--out",
        s(&dir),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("plan.jsonl")).unwrap(),
        plan_text
    );

    let out = ok(&["sweep", "local", s(&dir), "--jobs", "2"]);
    assert!(out.contains("8 done, 0 failed"), "{out}");
    let st = ok(&["sweep", "status", s(&dir)]);
    assert!(
        st.contains("done     8") && st.contains("pending  0"),
        "{st}"
    );
    let merged = ok(&["sweep", "merge", s(&dir)]);
    assert!(merged.contains("8 rows"), "{merged}");
    for f in [
        "results.csv",
        "report.md",
        "ntk_scaling.svg",
        "ntk_scaling.png",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let rows = results(&dir);
    assert_eq!(rows.len(), 8);
    for row in &rows {
        let (eps, nc, seed) = (&row["eps"], &row["nc"], &row["seed"]);
        let rec = direct_ntk(&["--widths", "10", "--eps", eps, "--nc", nc, "--seed", seed]);
        for (k, v) in numbers(&rec, &["eps", "nc", "seed"]) {
            let cell: f64 = row[&k].parse().unwrap();
            assert_eq!(cell, v, "{k} at eps {eps}, nc {nc}, seed {seed}");
        }
        assert_eq!(row["engine"], rec["engine"].as_str().unwrap());
        assert_eq!(row["device"], "cpu");
    }
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_sharded_ntk_equals_the_unsharded_one() {
    let root = tmp("shard");
    let dir = plan(
        &root,
        "command = \"ntk\"\n[base]\nwidths = \"10\"\nmethod = \"gram\"\nnc = 130\ntop_k = 5\n[grid]\neps = [\"1/8\", \"1/16\"]\n[shard]\nrows = 50\n",
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("plan.jsonl"))
            .unwrap()
            .lines()
            .count(),
        6,
        "two points of three shards each"
    );
    ok(&["sweep", "local", s(&dir), "--jobs", "2"]);
    assert!(dir.join("tasks/1/gram_u.npy").exists());
    ok(&["sweep", "merge", s(&dir)]);
    let rows = results(&dir);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let eps = &row["eps"];
        let rec = direct_ntk(&[
            "--widths", "10", "--method", "gram", "--nc", "130", "--top-k", "5", "--eps", eps,
        ]);
        let mut worst = Vec::new();
        for (k, v) in numbers(&rec, &["eps"]) {
            let cell: f64 = row[&k].parse().unwrap();
            let rel = if v == 0.0 {
                cell.abs()
            } else {
                ((cell - v) / v).abs()
            };
            // λ_max/λ_min over the nonzero eigenvalues: here λ_min is ~1e-13 λ_max, at the
            // round-off level, so any change of summation order (or of --chunk-mb) moves it.
            let tol = if k.contains("cond") { 1e-2 } else { 1e-12 };
            if rel > tol {
                worst.push(format!("{k}: sharded {cell} vs {v} (rel {rel:e})"));
            }
        }
        assert!(worst.is_empty(), "eps {eps}: {worst:#?}");
    }
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn reruns_redo_failed_and_killed_tasks_only() {
    let root = tmp("rerun");
    let dir = plan(
        &root,
        "command = \"ntk\"\n[base]\nwidths = \"8\"\nnc = 40\n[grid]\neps = [\"1/8\", \"1/16\", \"1/32\"]\n",
    );
    // Task 2 fails: its arguments are made invalid behind the planner's back.
    let good = std::fs::read_to_string(dir.join("plan.jsonl")).unwrap();
    let bad = good.replace("\"--eps\",\"1/32\"", "\"--eps\",\"-1\"");
    assert_ne!(good, bad);
    std::fs::write(dir.join("plan.jsonl"), &bad).unwrap();
    let o = mspinn(&["sweep", "local", s(&dir), "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("task 2"), "{}", text(&o));
    assert!(dir.join("tasks/2.failed").exists());
    let st = ok(&["sweep", "status", s(&dir)]);
    assert!(
        st.contains("failed   1") && st.contains("task 2 (eps = 1/32)"),
        "{st}"
    );
    std::fs::write(dir.join("plan.jsonl"), &good).unwrap();

    // Task 1 is "killed" half-way: its folder is gone, a temporary one from a dead process left.
    std::fs::remove_dir_all(dir.join("tasks/1")).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let stale = dir.join("tasks/1.tmp-999999999");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(
        stale.join("claim.json"),
        format!("{{\"host\":\"{}\",\"pid\":999999999}}", host.trim()),
    )
    .unwrap();
    std::fs::write(stale.join("ntk.json"), "half").unwrap();
    let st = ok(&["sweep", "status", s(&dir)]);
    assert!(
        st.contains("done     1") && st.contains("pending  1"),
        "{st}"
    );
    // Task 0 is done and must stay untouched.
    std::fs::write(dir.join("tasks/0/sentinel"), "x").unwrap();
    let out = ok(&["sweep", "local", s(&dir)]);
    assert!(out.contains("1 done, 2 to run"), "{out}");
    assert!(dir.join("tasks/0/sentinel").exists());
    assert!(!stale.exists() && !dir.join("tasks/2.failed").exists());
    let out = ok(&["sweep", "run", s(&dir), "--task", "0"]);
    assert!(out.contains("already done"), "{out}");
    // The array task index comes from Slurm's (or Kubernetes') variable.
    let o = Command::new(env!("CARGO_BIN_EXE_mspinn"))
        .args(["sweep", "run", s(&dir)])
        .env("SLURM_ARRAY_TASK_ID", "2")
        .output()
        .unwrap();
    assert!(text(&o).contains("task 2 was already done"), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_mspinn"))
        .args(["sweep", "run", s(&dir)])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert!(text(&o).contains("task 1 was already done"), "{}", text(&o));
    ok(&["sweep", "merge", s(&dir)]);
    assert_eq!(results(&dir).len(), 3);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn bad_specs_name_the_key() {
    let root = tmp("bad");
    let cases = [
        ("command = \"fit\"\n", "command"),
        ("[grid]\neps = [\"1/8\"]\n", "command: missing"),
        ("command = \"ntk\"\nbogus = 1\n", "bogus"),
        ("command = \"ntk\"\n[base]\nwidht = \"10\"\n", "base.widht"),
        ("command = \"ntk\"\n[grid]\nnc = 5\n", "grid.nc"),
        (
            "command = \"ntk\"\n[grid]\nnc = []\n",
            "grid.nc: the list of values is empty",
        ),
        ("command = \"ntk\"\n[base]\njson = true\n", "base.json"),
        (
            "command = \"ntk\"\n[base]\nfull-spectrum = \"yes\"\n",
            "base.full-spectrum",
        ),
        ("command = \"ntk\"\n[base]\nnc = true\n", "base.nc"),
        (
            "command = \"ntk\"\n[base]\nnc = 8\n[grid]\nnc = [8]\n",
            "grid.nc",
        ),
        (
            "command = \"ntk\"\n[grid]\neps = [\"1/8\", \"abc\"]\n",
            "eps = abc",
        ),
        ("command = \"train\"\n[shard]\nrows = 10\n", "shard"),
        ("command = \"ntk\"\n[shard]\nrows = 0\n", "shard.rows"),
        (
            "command = \"train\"\n[base]\nscheduel = \"10@1e-3\"\n",
            "base.scheduel",
        ),
    ];
    for (k, (spec, needle)) in cases.iter().enumerate() {
        let p = root.join(format!("bad{k}.toml"));
        std::fs::write(&p, spec).unwrap();
        let o = mspinn(&[
            "sweep",
            "plan",
            s(&p),
            "--out",
            s(&root.join(format!("p{k}"))),
        ]);
        assert_eq!(o.status.code(), Some(1), "{spec}");
        assert!(
            text(&o).contains(needle),
            "{spec}: {} lacks {needle}",
            text(&o)
        );
        assert!(
            !root.join(format!("p{k}")).exists(),
            "a bad spec writes nothing"
        );
    }
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_train_sweep_trains_each_point_as_mspinn_train_does() {
    let root = tmp("train");
    let dir = plan(
        &root,
        "command = \"train\"\n[base]\npreset = \"fig4-poisson\"\nschedule = \"30@1e-3\"\ntrials = 1\nwidths = \"8,8\"\nnc = 64\n[grid]\neps = [\"1/8\", \"1/16\"]\n",
    );
    ok(&["sweep", "local", s(&dir), "--jobs", "2"]);
    ok(&["sweep", "merge", s(&dir)]);
    assert!(dir.join("train_error.svg").exists());
    let rows = results(&dir);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let out = root.join(format!("direct-{}", row["task"]));
        let eps = &row["eps"];
        ok(&[
            "train",
            "--preset",
            "fig4-poisson",
            "--schedule",
            "30@1e-3",
            "--trials",
            "1",
            "--widths",
            "8,8",
            "--nc",
            "64",
            "--eps",
            eps,
            "--out",
            s(&out),
            "--quiet",
        ]);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap())
                .unwrap();
        for k in [
            "max_error_mean_network",
            "mean_variance",
            "rel_l2_mean_network",
        ] {
            let cell: f64 = row[k].parse().unwrap();
            assert_eq!(cell, r[k].as_f64().unwrap(), "{k} at eps {eps}");
        }
    }
    std::fs::remove_dir_all(&root).ok();
}
