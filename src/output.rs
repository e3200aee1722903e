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

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
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
