//! The weights file: safetensors tensors `layers.{k}.weight`/`.bias` with the network's config
//! packed into one metadata entry, and the checks that a file chains into an MLP whose config
//! agrees with the caller's. Split from [`super`] to keep files short.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use super::{check_dtype, Mlp, MlpConfig};
use crate::{Activation, Init, ModelError, Result};

/// The one metadata entry [`Mlp::save`] writes: every `mspinn.*` key as a `key=value` line,
/// sorted. safetensors writes a metadata map in its (random) iteration order, so several entries
/// would make two saves of the same network differ byte for byte.
pub(super) const META_PACKED: &str = "mspinn.network";
pub(super) const META_FORMAT: &str = "mspinn.format";
pub(super) const META_ACTIVATION: &str = "mspinn.activation";
pub(super) const META_HIDDEN: &str = "mspinn.hidden";
pub(super) const META_INIT: &str = "mspinn.init";
pub(super) const META_SEED: &str = "mspinn.seed";
pub(super) const META_DTYPE: &str = "mspinn.dtype";
pub(super) const META_INPUT_DIM: &str = "mspinn.input_dim";

/// `meta` as the single [`META_PACKED`] entry, keys sorted.
pub(super) fn packed(meta: HashMap<String, String>) -> HashMap<String, String> {
    let sorted: std::collections::BTreeMap<String, String> = meta.into_iter().collect();
    let text: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    HashMap::from([(META_PACKED.to_owned(), text.join("\n"))])
}

/// The `mspinn.*` keys of a file's metadata, from the packed entry or (files written with one
/// entry per key) as they are.
pub(super) fn unpacked(meta: &HashMap<String, String>) -> HashMap<String, String> {
    match meta.get(META_PACKED) {
        Some(text) => text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        None => meta.clone(),
    }
}
pub(super) const FORMAT_VERSION: &str = "1";

pub(super) fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F64 => "f64",
        _ => "other",
    }
}

/// The network config and dtype stored in a weights file's metadata by [`Mlp::save`]; `None`
/// for a file without it (written by an older mspinn, or by another tool). Reads and checks the
/// whole file, so a truncated or corrupt file is reported with its real cause.
pub fn read_config(path: &Path) -> Result<Option<(MlpConfig, DType)>> {
    Ok(WeightsFile::read(path)?.stored)
}

/// A weights file read into memory, its tensors checked to chain into an MLP.
pub(super) struct WeightsFile {
    pub(super) path: String,
    /// (weight, bias) per affine layer, as stored.
    pub(super) layers: Vec<(Tensor, Tensor)>,
    /// Hidden widths from the tensor shapes.
    pub(super) hidden: Vec<usize>,
    /// Input dimension from layer 0's weight shape.
    pub(super) input_dim: usize,
    pub(super) stored: Option<(MlpConfig, DType)>,
}

impl WeightsFile {
    pub(super) fn read(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let werr = |reason: String| ModelError::Weights {
            path: shown.clone(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| {
            werr(match e.kind() {
                std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
                _ => format!("cannot be read: {e}"),
            })
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            werr(format!(
                "it is not a complete safetensors file ({} bytes; truncated or corrupt?): {e}",
                bytes.len()
            ))
        })?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| werr(format!("unreadable header: {e}")))?;
        // Non-float tensors first, by name so the message is deterministic: candle would
        // convert an i64 layer to zeros-and-integers and the NTK would come out as 0.
        let mut views = st.tensors();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, view) in &views {
            let dtype = DType::try_from(view.dtype()).map_err(|e| werr(format!("{name}: {e}")))?;
            if !matches!(dtype, DType::F32 | DType::F64) {
                return Err(ModelError::WeightsDType {
                    path: shown.clone(),
                    tensor: name.clone(),
                    dtype,
                });
            }
        }
        let get = |name: &str| -> Result<Option<Tensor>> {
            match views.iter().find(|(n, _)| n == name) {
                Some((_, view)) => {
                    let t = candle_core::safetensors::Load::load(view, &Device::Cpu)
                        .map_err(|e| werr(format!("{name}: {e}")))?;
                    Ok(Some(t))
                }
                None => Ok(None),
            }
        };
        let mut layers = Vec::new();
        let mut hidden = Vec::new();
        let mut prev_out = 1usize;
        let mut input_dim = 1usize;
        for k in 0.. {
            let (Some(w), Some(b)) = (
                get(&format!("layers.{k}.weight"))?,
                get(&format!("layers.{k}.bias"))?,
            ) else {
                break;
            };
            let (out, inp) = w.dims2().map_err(|_| {
                werr(format!(
                    "layers.{k}.weight has shape {:?}, expected (out, in)",
                    w.dims()
                ))
            })?;
            if k == 0 {
                // Layer 0 takes x ∈ ℝ^d: its input width is d, whatever it is.
                input_dim = inp;
                prev_out = inp;
            }
            if inp != prev_out || b.dims() != [out] {
                return Err(werr(format!(
                    "layer {k}: weight {:?} and bias {:?} do not chain onto a layer of width {prev_out}",
                    w.dims(),
                    b.dims()
                )));
            }
            layers.push((w, b));
            hidden.push(out);
            prev_out = out;
        }
        if layers.len() < 2 || prev_out != 1 {
            return Err(werr(format!(
                "expected layers.0 … layers.L with a scalar output; found {} layers ending in width {prev_out}",
                layers.len()
            )));
        }
        hidden.pop();
        let meta = header.metadata().as_ref().map(unpacked);
        let stored = match &meta {
            Some(meta) if meta.contains_key(META_FORMAT) => Some(parse_metadata(meta, &werr)?),
            _ => None,
        };
        if let Some((config, _)) = &stored {
            if config.hidden != hidden {
                return Err(werr(format!(
                    "its metadata says hidden widths {:?}, but its tensors have {hidden:?}",
                    config.hidden
                )));
            }
            if config.input_dim != input_dim {
                return Err(werr(format!(
                    "its metadata says input dimension {}, but layers.0.weight takes {input_dim}",
                    config.input_dim
                )));
            }
        }
        Ok(Self {
            path: shown,
            layers,
            hidden,
            input_dim,
            stored,
        })
    }

    /// The given config against what the file holds: activation (when stored) and widths.
    pub(super) fn check(&self, given: &MlpConfig) -> Result<()> {
        let mismatch = |field, stored: String, given: String| ModelError::WeightsMismatch {
            path: self.path.clone(),
            field,
            stored,
            given,
        };
        if let Some((stored, _)) = &self.stored {
            if stored.activation != given.activation {
                return Err(mismatch(
                    "activation",
                    stored.activation.name().to_owned(),
                    given.activation.name().to_owned(),
                ));
            }
        }
        if self.hidden != given.hidden {
            return Err(mismatch(
                "widths",
                format!("{:?}", self.hidden),
                format!("{:?}", given.hidden),
            ));
        }
        if self.input_dim != given.input_dim {
            return Err(mismatch(
                "input dimension",
                self.input_dim.to_string(),
                given.input_dim.to_string(),
            ));
        }
        Ok(())
    }

    pub(super) fn build(self, config: MlpConfig, dtype: DType, device: &Device) -> Result<Mlp> {
        check_dtype(dtype)?;
        config.validate()?;
        let mut weights = Vec::with_capacity(self.layers.len());
        let mut biases = Vec::with_capacity(self.layers.len());
        for (w, b) in &self.layers {
            weights.push(Var::from_tensor(&w.to_dtype(dtype)?.to_device(device)?)?);
            biases.push(Var::from_tensor(&b.to_dtype(dtype)?.to_device(device)?)?);
        }
        Ok(Mlp {
            config,
            weights,
            biases,
        })
    }
}

pub(super) fn parse_metadata(
    meta: &HashMap<String, String>,
    werr: &dyn Fn(String) -> ModelError,
) -> Result<(MlpConfig, DType)> {
    let get = |key: &str| {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| werr(format!("its metadata has no {key:?}")))
    };
    let bad =
        |key: &str, value: &str| werr(format!("its metadata {key:?} = {value:?} is not valid"));
    let format = get(META_FORMAT)?;
    if format != FORMAT_VERSION {
        return Err(werr(format!(
            "its metadata format {format:?} is newer than this mspinn reads ({FORMAT_VERSION:?})"
        )));
    }
    let activation = get(META_ACTIVATION)?;
    let activation =
        Activation::parse(activation).ok_or_else(|| bad(META_ACTIVATION, activation))?;
    let hidden_text = get(META_HIDDEN)?;
    let hidden = hidden_text
        .split(',')
        .map(|w| w.trim().parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(META_HIDDEN, hidden_text))?;
    let init = get(META_INIT)?;
    let init = Init::parse(init).ok_or_else(|| bad(META_INIT, init))?;
    let seed = get(META_SEED)?;
    let seed = seed.parse::<u64>().map_err(|_| bad(META_SEED, seed))?;
    let dtype = match get(META_DTYPE)? {
        "f32" => DType::F32,
        "f64" => DType::F64,
        other => return Err(bad(META_DTYPE, other)),
    };
    let input_dim = match meta.get(META_INPUT_DIM) {
        None => 1,
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| bad(META_INPUT_DIM, d))?,
    };
    Ok((
        MlpConfig::new(hidden, activation, init, seed).with_input_dim(input_dim),
        dtype,
    ))
}
