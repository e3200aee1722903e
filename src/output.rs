//! Run folders: every file is written to a temporary name and renamed into place, so an
//! interrupted run never leaves a half-written result behind.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// Creates `dir` (and parents) and returns it.
pub fn run_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Writes `bytes` to `path` through a temporary file whose name no other writer uses (process
/// id and a counter), fsync'd, and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    mspinn_train::checkpoint::atomic_write(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// How a command may treat a run folder that already holds a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderMode {
    /// The folder must not hold a run (config.toml, result.json or trial-*).
    Fresh,
    /// A run there is cleared first (`--overwrite`).
    Overwrite,
    /// The run there is continued (`--resume`).
    Resume,
}

/// The lock file of a run folder, held (flock'd) for the run's life; it holds the pid.
pub const LOCK_FILE: &str = ".mspinn.lock";

/// A run folder's lock: while this value lives no other mspinn process can claim the folder.
/// The operating system releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Locks `dir` (created if needed) for this process, or fails at once naming the holder's pid.
pub fn lock_run_dir(dir: &Path) -> Result<RunLock> {
    use std::io::{Read, Seek, Write};
    run_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if pid.is_empty() {
                "another mspinn process".to_string()
            } else {
                format!("another mspinn process (pid {pid})")
            };
            anyhow::bail!(
                "{} is in use by {holder}: one run folder holds one run; wait for it, or give \
                 another --out",
                dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(RunLock { _file: file })
}

/// The entries of `dir` that belong to a run: config.toml, result.json and trial-* folders.
fn run_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n == "config.toml" || n == "result.json" || n.starts_with("trial-")
        })
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Claims `dir` for one run: locks it ([`lock_run_dir`]), then refuses a folder that holds
/// another run unless `mode` resumes it or overwrites it (its run files are removed first:
/// config.toml, result.json, trial-*, and the CSV/PNG/SVG results beside them).
pub fn claim_run_dir(dir: &Path, mode: FolderMode) -> Result<RunLock> {
    let lock = lock_run_dir(dir)?;
    let held = run_entries(dir);
    match mode {
        FolderMode::Resume => {}
        FolderMode::Fresh if held.is_empty() => {}
        FolderMode::Fresh => {
            let names: Vec<String> = held
                .iter()
                .take(3)
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            anyhow::bail!(
                "{} already holds a run ({}{}); give --overwrite to replace it, --resume {} to \
                 continue it, or another --out",
                dir.display(),
                names.join(", "),
                if held.len() > 3 { ", …" } else { "" },
                dir.display()
            );
        }
        FolderMode::Overwrite => {
            for p in held {
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                r.with_context(|| format!("--overwrite: cannot remove {}", p.display()))?;
            }
            for e in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
                let p = e.path();
                let result = matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("csv" | "png" | "svg" | "npy")
                );
                if result && p.is_file() {
                    std::fs::remove_file(&p)
                        .with_context(|| format!("--overwrite: cannot remove {}", p.display()))?;
                }
            }
        }
    }
    Ok(lock)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, toml::to_string_pretty(value)?.as_bytes())
}

/// A CSV of equally long columns, full f64 precision (shortest round-trip representation).
pub fn write_columns(path: &Path, names: &[&str], cols: &[&[f64]]) -> Result<()> {
    let n = cols.first().map_or(0, |c| c.len());
    anyhow::ensure!(
        cols.iter().all(|c| c.len() == n) && names.len() == cols.len(),
        "internal: CSV columns of unequal length for {}",
        path.display()
    );
    let mut s = names.join(",");
    s.push('\n');
    for i in 0..n {
        let row: Vec<String> = cols.iter().map(|c| format!("{:e}", c[i])).collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    write_atomic(path, s.as_bytes())
}

/// A row-major f64 matrix as a NumPy .npy file (format 1.0), readable by `numpy.load`.
pub fn write_npy(path: &Path, rows: usize, cols: usize, data: &[f64]) -> Result<()> {
    anyhow::ensure!(data.len() == rows * cols, "internal: npy shape mismatch");
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header must be a multiple of 64.
    let pad = 64 - (10 + header.len() + 1) % 64;
    header.push_str(&" ".repeat(pad % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 8 * data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Versions and build facts recorded in every result.
#[derive(Clone, Debug, Serialize)]
pub struct BuildInfo {
    pub mspinn: &'static str,
    pub cuda_feature: bool,
    pub target: &'static str,
    pub profile: &'static str,
}

pub fn build_info() -> BuildInfo {
    BuildInfo {
        mspinn: env!("CARGO_PKG_VERSION"),
        cuda_feature: cfg!(feature = "cuda"),
        target: std::env::consts::ARCH,
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_data_round_trips() {
        let dir = std::env::temp_dir().join(format!("mspinn-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.npy");
        write_npy(&p, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        let b = std::fs::read(&p).unwrap();
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 3)"));
        let last = f64::from_le_bytes(b[b.len() - 8..].try_into().unwrap());
        assert_eq!(last, 6.5);
        std::fs::remove_dir_all(&dir).ok();
    }
}
