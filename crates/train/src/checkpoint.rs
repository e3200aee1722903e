//! Resumable checkpoints: weights and Adam moments as safetensors, the loop position as JSON.
//!
//! The two are committed together: the weights go to a new, uniquely named file (fsync'd), then
//! `checkpoint.json` — the manifest, which names that file — replaces the old one by a rename
//! (fsync'd, and the folder too). A run killed at any moment leaves either the old pair or the new
//! pair, never new weights beside an old position. Temporary names carry the process id and a
//! counter, so two writers never share one. Checkpoints written before the manifest named its
//! weights (a fixed `checkpoint.safetensors`) still load.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::Tensor;
use mspinn_model::Mlp;
use serde::{Deserialize, Serialize};

use crate::{AdamState, Result, TrainError};

/// Where the loop stood when the checkpoint was written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LoopPosition {
    /// Index of the phase to continue.
    pub phase: usize,
    /// Iterations of that phase already done.
    pub iter_in_phase: u64,
    /// Iterations done over all phases.
    pub global_iter: u64,
    /// Adam's step count t.
    pub adam_t: u64,
    /// The schedule the run was started with (a resume under another schedule is refused).
    pub schedule: String,
    /// Seed of the network's initialisation (no other randomness is drawn during training).
    pub seed: u64,
    /// Wall seconds of training before this checkpoint: a resumed run's clock continues from here,
    /// so metrics.csv and history.csv stay monotone in time. Absent (0) in checkpoints written
    /// before it existed; the trainer then reads it from metrics.csv.
    #[serde(default)]
    pub seconds: f64,
    /// The iteration of the last metrics.csv row on disk when the checkpoint was written: a
    /// resume truncates metrics.csv and history.csv to it, so no row is lost or repeated. Absent
    /// in older checkpoints (then rows before `global_iter` are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_logged: Option<u64>,
    /// The weights file (in the checkpoint folder) this position belongs to. Absent in older
    /// checkpoints, whose weights are `checkpoint.safetensors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
}

pub struct Checkpoint {
    pub position: LoopPosition,
    pub adam: Option<AdamState>,
}

const WEIGHTS: &str = "checkpoint.safetensors";
const STATE: &str = "checkpoint.json";

/// A name beside `path` that no other writer uses: `.NAME.PID-COUNTER.tmp`.
pub fn unique_tmp(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Flushes a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened.
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Writes `bytes` to `path` through a uniquely named temporary file, fsync and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = unique_tmp(path);
    let io = |source| TrainError::Io {
        path: path.display().to_string(),
        source,
    };
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// The manifest of the checkpoint in `dir`, if there is one.
pub fn read_position(dir: &Path) -> Result<Option<LoopPosition>> {
    let path = dir.join(STATE);
    let json = match std::fs::read(&path) {
        Ok(j) => j,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TrainError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| TrainError::Checkpoint {
            path: dir.display().to_string(),
            reason: format!("{STATE}: {e}"),
        })
}

pub fn save(dir: &Path, mlp: &Mlp, adam: &AdamState, pos: &LoopPosition) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut tensors: HashMap<String, Tensor> = mlp.named_tensors();
    for (k, (m, v)) in adam.m.iter().zip(&adam.v).enumerate() {
        tensors.insert(format!("adam.m.{k}"), m.clone());
        tensors.insert(format!("adam.v.{k}"), v.clone());
    }
    // The weights under a name of their own, then the manifest naming them: one rename commits
    // both.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "{}-{}-{}.{WEIGHTS}",
        pos.global_iter,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let wpath = dir.join(&name);
    candle_core::safetensors::save(&tensors, &wpath).map_err(|e| TrainError::Checkpoint {
        path: wpath.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::File::open(&wpath)
        .and_then(|f| f.sync_all())
        .map_err(|source| TrainError::Io {
            path: wpath.display().to_string(),
            source,
        })?;
    let previous = read_position(dir).ok().flatten();
    let pos = LoopPosition {
        weights: Some(name.clone()),
        ..pos.clone()
    };
    let json = serde_json::to_vec_pretty(&pos).map_err(|e| TrainError::Checkpoint {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    atomic_write(&dir.join(STATE), &json)?;
    // The weights of the previous checkpoint (or of the old fixed name) are no longer named.
    let old = previous
        .and_then(|p| p.weights)
        .unwrap_or_else(|| WEIGHTS.to_string());
    if old != name {
        let _ = std::fs::remove_file(dir.join(old));
    }
    Ok(wpath)
}

/// Loads a checkpoint into `mlp` (which must have the same architecture) and returns the loop
/// position and Adam state.
pub fn load(dir: &Path, mlp: &Mlp) -> Result<Checkpoint> {
    let cerr = |reason: String| TrainError::Checkpoint {
        path: dir.display().to_string(),
        reason,
    };
    let json =
        std::fs::read(dir.join(STATE)).map_err(|e| cerr(format!("cannot read {STATE}: {e}")))?;
    let position: LoopPosition =
        serde_json::from_slice(&json).map_err(|e| cerr(format!("{STATE}: {e}")))?;
    let wname = position.weights.as_deref().unwrap_or(WEIGHTS);
    let tensors = candle_core::safetensors::load(dir.join(wname), mlp.device())
        .map_err(|e| cerr(format!("{wname}: {e}")))?;
    let vars = mlp.vars();
    for (k, var) in vars.iter().enumerate() {
        let (layer, kind) = (k / 2, if k % 2 == 0 { "weight" } else { "bias" });
        let name = format!("layers.{layer}.{kind}");
        let t = tensors
            .get(&name)
            .ok_or_else(|| cerr(format!("{WEIGHTS} has no {name}")))?;
        if t.dims() != var.dims() {
            return Err(cerr(format!(
                "{name} has shape {:?}, the network expects {:?}",
                t.dims(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    let mut m = Vec::new();
    let mut v = Vec::new();
    for (k, var) in vars.iter().enumerate() {
        match (
            tensors.get(&format!("adam.m.{k}")),
            tensors.get(&format!("adam.v.{k}")),
        ) {
            (Some(mk), Some(vk)) => {
                m.push(mk.to_dtype(var.dtype())?);
                v.push(vk.to_dtype(var.dtype())?);
            }
            _ => {
                return Err(cerr(format!(
                    "{WEIGHTS} lacks the Adam moments of variable {k}"
                )))
            }
        }
    }
    let adam = Some(AdamState {
        m,
        v,
        t: position.adam_t,
    });
    Ok(Checkpoint { position, adam })
}
