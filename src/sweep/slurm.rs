//! `sweep slurm`: an sbatch script for a job array over the pending tasks, submitted with
//! `sbatch`. Each array task runs `<this binary> sweep run DIR`, which reads its index from
//! SLURM_ARRAY_TASK_ID; so the binary and DIR must be on a filesystem every node sees.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::plan::read_plan;
use super::run::done_dir;
use crate::output::write_atomic;

/// Options of the array job.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub max_parallel: Option<u32>,
    pub gpu: bool,
    pub dry_run: bool,
}

/// Sorted indices as Slurm's compact list: 0-3,5,7-8.
pub fn ranges(idx: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut k = 0;
    while k < idx.len() {
        let start = idx[k];
        let mut end = start;
        while k + 1 < idx.len() && idx[k + 1] == end + 1 {
            k += 1;
            end = idx[k];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        k += 1;
    }
    out.join(",")
}

/// Single-quotes a path for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The sbatch script for `pending` tasks of the plan in `dir` (absolute), run by `exe`.
pub fn script(exe: &Path, dir: &Path, pending: &[usize], o: &SlurmOptions) -> String {
    let mut array = ranges(pending);
    if let Some(k) = o.max_parallel {
        array.push_str(&format!("%{k}"));
    }
    let logs = dir.join("slurm");
    let mut s = String::from("#!/bin/bash\n");
    s.push_str("# Written by `mspinn sweep slurm`: one array task per pending task of the plan.\n");
    s.push_str("# The binary and the plan folder must be on a filesystem every node sees.\n");
    s.push_str("#SBATCH --job-name=mspinn-sweep\n");
    s.push_str(&format!("#SBATCH --array={array}\n"));
    s.push_str(&format!("#SBATCH --output={}/%A_%a.out\n", logs.display()));
    if let Some(p) = &o.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &o.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(c) = o.cpus_per_task {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if o.gpu {
        s.push_str("#SBATCH --gres=gpu:1\n");
    }
    s.push_str(&format!(
        "exec {} sweep run {}\n",
        quote(&exe.display().to_string()),
        quote(&dir.display().to_string())
    ));
    s
}

/// Writes DIR/sbatch.sh and (unless a dry run) submits it; prints the job id.
pub fn slurm(dir: &Path, o: &SlurmOptions) -> Result<()> {
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let tasks = read_plan(&dir)?;
    let pending: Vec<usize> = (0..tasks.len())
        .filter(|&i| !done_dir(&dir, i).is_dir())
        .collect();
    if pending.is_empty() {
        println!("all {} tasks are done; nothing to submit", tasks.len());
        return Ok(());
    }
    // Tasks that compute on cuda need a GPU each.
    let cuda = tasks.iter().any(|t| {
        t.args
            .windows(2)
            .any(|w| w[0] == "--device" && w[1].starts_with("cuda"))
    });
    let o = SlurmOptions {
        gpu: o.gpu || cuda,
        ..o.clone()
    };
    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    std::fs::create_dir_all(dir.join("slurm"))?;
    let path = dir.join("sbatch.sh");
    write_atomic(&path, script(&exe, &dir, &pending, &o).as_bytes())?;
    if o.dry_run {
        println!(
            "wrote {} ({} array tasks; not submitted)",
            path.display(),
            pending.len()
        );
        return Ok(());
    }
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .current_dir(&dir)
        .output()
        .context("cannot run sbatch (is Slurm installed and on PATH?)")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    println!(
        "submitted job {id}: {} array tasks ({}) from {}",
        pending.len(),
        ranges(&pending),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_compact_and_the_script_names_everything() {
        assert_eq!(ranges(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[]), "");
        let o = SlurmOptions {
            partition: Some("gpu".into()),
            time: Some("01:00:00".into()),
            cpus_per_task: Some(4),
            max_parallel: Some(2),
            gpu: true,
            dry_run: true,
        };
        let s = script(
            Path::new("/opt/mspinn"),
            Path::new("/shared/sw"),
            &[0, 1, 3],
            &o,
        );
        for line in [
            "#SBATCH --array=0-1,3%2",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=01:00:00",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --output=/shared/sw/slurm/%A_%a.out",
            "exec '/opt/mspinn' sweep run '/shared/sw'",
        ] {
            assert!(s.contains(line), "{line} missing from\n{s}");
        }
    }
}
