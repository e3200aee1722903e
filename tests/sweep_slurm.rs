//! `mspinn sweep slurm` against real Slurm daemons: submits a 2×2 NTK plan as a job array, waits
//! for it, merges, and compares every row with the same plan run by `sweep local`.
//!
//! Needs a running cluster (`scripts/slurm-local.sh start` makes a one-node one) and is selected
//! with MSPINN_SLURM_TEST=1, as `.ci/run` does; otherwise it is skipped with the reason printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::mspinn;

fn ok(args: &[&str]) -> String {
    let o = mspinn(args);
    assert!(
        o.status.success(),
        "mspinn {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const SPEC: &str = "command = \"ntk\"\n[base]\nwidths = \"10\"\n[grid]\neps = [\"1/8\", \"1/16\"]\nnc = [32, 64]\n";

fn planned(root: &Path, name: &str) -> PathBuf {
    let spec = root.join("spec.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let dir = root.join(name);
    ok(&["sweep", "plan", s(&spec), "--out", s(&dir)]);
    dir
}

/// results.csv without the timing column.
fn rows(dir: &Path) -> Vec<Vec<(String, String)>> {
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .filter(|(h, _)| h != "seconds")
                .collect()
        })
        .collect()
}

#[test]
fn a_job_array_runs_the_plan_and_merges_to_the_local_results() {
    if std::env::var("MSPINN_SLURM_TEST").as_deref() != Ok("1") {
        println!(
            "skipped: set MSPINN_SLURM_TEST=1 with a running Slurm (scripts/slurm-local.sh start)"
        );
        return;
    }
    // A folder every node sees: on the one-node test cluster, any local one.
    let root = std::env::temp_dir().join(format!("mspinn-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let dir = planned(&root, "slurm");

    let out = ok(&[
        "sweep",
        "slurm",
        s(&dir),
        "--max-parallel",
        "2",
        "--cpus-per-task",
        "1",
    ]);
    let script = std::fs::read_to_string(dir.join("sbatch.sh")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%2"), "{script}");
    let job = out
        .split_whitespace()
        .skip_while(|w| *w != "job")
        .nth(1)
        .map(|w| w.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no job id in {out:?}"));
    println!("{}", out.trim());

    let start = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-j", &job, "-o", "%i %T"])
            .output()
            .expect("squeue runs");
        let queued = String::from_utf8_lossy(&q.stdout).trim().to_string();
        if q.status.success() && queued.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "job {job} still queued after 120 s: {queued}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "job {job} finished in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let st = ok(&["sweep", "status", s(&dir)]);
    assert!(st.contains("done     4"), "{st}");
    for i in 0..4 {
        let log = std::fs::read_dir(dir.join("slurm"))
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("_{i}.out"))
            });
        assert!(log, "no Slurm log of array task {i}");
    }
    ok(&["sweep", "merge", s(&dir)]);

    let local = planned(&root, "local");
    ok(&["sweep", "local", s(&local), "--jobs", "2"]);
    ok(&["sweep", "merge", s(&local)]);
    let (a, b) = (rows(&dir), rows(&local));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "Slurm and local results differ");
    std::fs::remove_dir_all(&root).ok();
}
