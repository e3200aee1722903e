//! Resumable checkpoints: weights and Adam moments as safetensors, the loop position as JSON.
//!
//! Both files are written to a temporary name and renamed into place, so a run killed mid-write
//! leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
}

pub struct Checkpoint {
    pub position: LoopPosition,
    pub adam: Option<AdamState>,
}

const WEIGHTS: &str = "checkpoint.safetensors";
const STATE: &str = "checkpoint.json";

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |source| TrainError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
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
    let wpath = dir.join(WEIGHTS);
    let tmp = wpath.with_extension("tmp");
    candle_core::safetensors::save(&tensors, &tmp).map_err(|e| TrainError::Checkpoint {
        path: tmp.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::rename(&tmp, &wpath).map_err(|source| TrainError::Io {
        path: wpath.display().to_string(),
        source,
    })?;
    let json = serde_json::to_vec_pretty(pos).map_err(|e| TrainError::Checkpoint {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    atomic_write(&dir.join(STATE), &json)?;
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
    let tensors = candle_core::safetensors::load(dir.join(WEIGHTS), mlp.device())
        .map_err(|e| cerr(format!("{WEIGHTS}: {e}")))?;
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
