//! The fully connected network u(x; θ) = W_L σ(… σ(W_0 x + b_0) …) + b_L.
//!
//! Parameters are candle `Var`s so the loss gradient comes from autograd. The flat parameter order
//! (layer by layer, weight row-major then bias) is the one the Jacobian columns, the L-BFGS vector
//! and the safetensors file agree on.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{Activation, Init, ModelError, Result};

/// Architecture and initialisation of a scalar-input, scalar-output MLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Hidden layer widths, e.g. `[40, 40, 40, 40]` for the paper's 4×40 network.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub init: Init,
    pub seed: u64,
}

impl MlpConfig {
    pub fn new(hidden: Vec<usize>, activation: Activation, init: Init, seed: u64) -> Self {
        Self {
            hidden,
            activation,
            init,
            seed,
        }
    }

    /// Layer sizes including the scalar input and output: `[1, hidden…, 1]`.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = Vec::with_capacity(self.hidden.len() + 2);
        d.push(1);
        d.extend_from_slice(&self.hidden);
        d.push(1);
        d
    }

    /// N_p, the number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.dims().windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() {
            return Err(ModelError::Config {
                field: "widths",
                value: "[]".into(),
                reason: "a PINN needs at least one hidden layer".into(),
            });
        }
        if let Some(k) = self.hidden.iter().position(|&w| w == 0) {
            return Err(ModelError::Config {
                field: "widths",
                value: format!("{:?}", self.hidden),
                reason: format!("hidden layer {k} has width 0"),
            });
        }
        Ok(())
    }
}

/// A network whose parameters live on one device in one dtype.
#[derive(Clone, Debug)]
pub struct Mlp {
    config: MlpConfig,
    weights: Vec<Var>,
    biases: Vec<Var>,
}

pub(crate) fn check_dtype(dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        other => Err(ModelError::DType(other)),
    }
}

impl Mlp {
    /// A freshly initialised network: every value drawn on the host from `config.seed`.
    pub fn new(config: MlpConfig, dtype: DType, device: &Device) -> Result<Self> {
        config.validate()?;
        check_dtype(dtype)?;
        let dims = config.dims();
        let draws = config.init.draw(&dims, config.seed);
        let mut weights = Vec::with_capacity(draws.len());
        let mut biases = Vec::with_capacity(draws.len());
        for (w, (weight, bias)) in dims.windows(2).zip(draws) {
            let wt = Tensor::from_vec(weight, (w[1], w[0]), device)?.to_dtype(dtype)?;
            let bt = Tensor::from_vec(bias, w[1], device)?.to_dtype(dtype)?;
            weights.push(Var::from_tensor(&wt)?);
            biases.push(Var::from_tensor(&bt)?);
        }
        Ok(Self {
            config,
            weights,
            biases,
        })
    }

    pub fn config(&self) -> &MlpConfig {
        &self.config
    }
    pub fn activation(&self) -> Activation {
        self.config.activation
    }
    pub fn dtype(&self) -> DType {
        self.weights[0].dtype()
    }
    pub fn device(&self) -> &Device {
        self.weights[0].device()
    }
    /// Number of affine layers (hidden layers + the linear output layer).
    pub fn num_layers(&self) -> usize {
        self.weights.len()
    }
    pub fn num_params(&self) -> usize {
        self.config.num_params()
    }
    /// Weight of layer k, shape (out, in).
    pub fn weight(&self, k: usize) -> &Var {
        &self.weights[k]
    }
    /// Bias of layer k, shape (out,).
    pub fn bias(&self, k: usize) -> &Var {
        &self.biases[k]
    }

    /// The trainable variables in flat-parameter order: W_0, b_0, W_1, b_1, …
    pub fn vars(&self) -> Vec<Var> {
        self.weights
            .iter()
            .zip(&self.biases)
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// θ as one f64 vector in flat-parameter order.
    pub fn flat_params(&self) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.num_params());
        for v in self.vars() {
            out.extend(v.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        }
        Ok(out)
    }

    /// Overwrites θ from a flat f64 vector (converted to the network's dtype).
    pub fn set_flat_params(&self, theta: &[f64]) -> Result<()> {
        if theta.len() != self.num_params() {
            return Err(ModelError::Shape {
                what: "flat parameter vector".into(),
                expected: self.num_params().to_string(),
                got: theta.len().to_string(),
            });
        }
        let mut off = 0;
        for v in self.vars() {
            let n = v.elem_count();
            let t = Tensor::from_slice(&theta[off..off + n], v.shape(), v.device())?
                .to_dtype(v.dtype())?;
            v.set(&t)?;
            off += n;
        }
        Ok(())
    }

    /// The tensors under their file names, `layers.{k}.weight` (out×in) and `layers.{k}.bias`.
    pub fn named_tensors(&self) -> HashMap<String, Tensor> {
        let mut map = HashMap::new();
        for (k, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            map.insert(format!("layers.{k}.weight"), w.as_tensor().clone());
            map.insert(format!("layers.{k}.bias"), b.as_tensor().clone());
        }
        map
    }

    /// The safetensors `__metadata__` that [`Mlp::save`] writes: everything needed to rebuild
    /// this network from its file alone (see [`read_config`]).
    pub fn metadata(&self) -> HashMap<String, String> {
        let c = &self.config;
        let hidden: Vec<String> = c.hidden.iter().map(usize::to_string).collect();
        HashMap::from([
            (META_FORMAT.to_owned(), FORMAT_VERSION.to_owned()),
            (META_ACTIVATION.to_owned(), c.activation.name().to_owned()),
            (META_HIDDEN.to_owned(), hidden.join(",")),
            (META_INIT.to_owned(), c.init.name().to_owned()),
            (META_SEED.to_owned(), c.seed.to_string()),
            (META_DTYPE.to_owned(), dtype_name(self.dtype()).to_owned()),
        ])
    }

    /// Writes the weights as safetensors in the network's dtype, with the architecture
    /// (activation, hidden widths, init, seed, dtype) in the file's metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors = self.named_tensors();
        safetensors::serialize_to_file(&tensors, Some(packed(self.metadata())), path).map_err(|e| {
            ModelError::Weights {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// Loads weights written by [`Mlp::save`] (or any file with the same names and shapes),
    /// converted to `dtype`. The widths are read from the tensor shapes; `activation` is the
    /// caller's. A file that stores its config (every file [`Mlp::save`] writes) must agree with
    /// it: a different activation is [`ModelError::WeightsMismatch`] naming both, never a network
    /// silently evaluated with the wrong σ. Older files without metadata load as before.
    pub fn load(
        path: &Path,
        activation: Activation,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let file = WeightsFile::read(path)?;
        let given = match &file.stored {
            Some((stored, _)) => MlpConfig {
                activation,
                ..stored.clone()
            },
            None => MlpConfig::new(file.hidden.clone(), activation, Init::GlorotNormal, 0),
        };
        file.check(&given)?;
        file.build(given, dtype, device)
    }

    /// Loads a network with the config given by the caller (`--activation`, `--widths`, …),
    /// checked against the file: the stored activation and the widths (from the metadata, or
    /// the tensor shapes of a file without metadata) must equal the given ones
    /// ([`ModelError::WeightsMismatch`] names both). The init and seed are provenance and are
    /// taken from the file when it has them.
    pub fn load_checked(
        path: &Path,
        given: &MlpConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let file = WeightsFile::read(path)?;
        file.check(given)?;
        let config = match &file.stored {
            Some((stored, _)) => stored.clone(),
            None => given.clone(),
        };
        file.build(config, dtype, device)
    }

    /// Loads a network from its file alone: activation, widths, init, seed and dtype from the
    /// metadata [`Mlp::save`] writes. A file without metadata (written before networks stored
    /// their config) is an error that says to name the activation ([`Mlp::load`]).
    pub fn load_with_config(path: &Path, device: &Device) -> Result<Self> {
        let file = WeightsFile::read(path)?;
        let Some((config, dtype)) = file.stored.clone() else {
            return Err(ModelError::Weights {
                path: path.display().to_string(),
                reason: "it has no network metadata (written by an older mspinn); \
                         give the activation and widths explicitly"
                    .into(),
            });
        };
        file.check(&config)?;
        file.build(config, dtype, device)
    }

    /// The same network in another dtype or on another device (fresh `Var`s: training the
    /// result never changes `self`, also when dtype and device are the same).
    pub fn to(&self, dtype: DType, device: &Device) -> Result<Self> {
        check_dtype(dtype)?;
        // candle returns the same variable for a conversion to its own dtype and device, and
        // `Var::from_tensor` of a variable shares its storage: detached, it is copied.
        let conv = |v: &Var| -> Result<Var> {
            Ok(Var::from_tensor(
                &v.as_tensor().to_device(device)?.to_dtype(dtype)?.detach(),
            )?)
        };
        Ok(Self {
            config: self.config.clone(),
            weights: self.weights.iter().map(conv).collect::<Result<_>>()?,
            biases: self.biases.iter().map(conv).collect::<Result<_>>()?,
        })
    }

    /// u(x) only, for evaluation on plotting/metric grids. `x` has shape (N, 1).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.weights.len() - 1;
        let mut h = x.clone();
        for k in 0..=last {
            h = h
                .matmul(&self.weights[k].t()?)?
                .broadcast_add(self.biases[k].as_tensor())?;
            if k < last {
                h = self.config.activation.derivs(&h, false)?.s0;
            }
        }
        Ok(h)
    }

    /// u at host points, as f64.
    pub fn eval_points(&self, x: &[f64]) -> Result<Vec<f64>> {
        let xt = points_tensor(x, self.dtype(), self.device())?;
        Ok(self
            .forward(&xt)?
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_vec1()?)
    }
}

/// The one metadata entry [`Mlp::save`] writes: every `mspinn.*` key as a `key=value` line,
/// sorted. safetensors writes a metadata map in its (random) iteration order, so several entries
/// would make two saves of the same network differ byte for byte.
const META_PACKED: &str = "mspinn.network";
const META_FORMAT: &str = "mspinn.format";
const META_ACTIVATION: &str = "mspinn.activation";
const META_HIDDEN: &str = "mspinn.hidden";
const META_INIT: &str = "mspinn.init";
const META_SEED: &str = "mspinn.seed";
const META_DTYPE: &str = "mspinn.dtype";

/// `meta` as the single [`META_PACKED`] entry, keys sorted.
fn packed(meta: HashMap<String, String>) -> HashMap<String, String> {
    let sorted: std::collections::BTreeMap<String, String> = meta.into_iter().collect();
    let text: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    HashMap::from([(META_PACKED.to_owned(), text.join("\n"))])
}

/// The `mspinn.*` keys of a file's metadata, from the packed entry or (files written with one
/// entry per key) as they are.
fn unpacked(meta: &HashMap<String, String>) -> HashMap<String, String> {
    match meta.get(META_PACKED) {
        Some(text) => text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        None => meta.clone(),
    }
}
const FORMAT_VERSION: &str = "1";

fn dtype_name(dtype: DType) -> &'static str {
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
struct WeightsFile {
    path: String,
    /// (weight, bias) per affine layer, as stored.
    layers: Vec<(Tensor, Tensor)>,
    /// Hidden widths from the tensor shapes.
    hidden: Vec<usize>,
    stored: Option<(MlpConfig, DType)>,
}

impl WeightsFile {
    fn read(path: &Path) -> Result<Self> {
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
        }
        Ok(Self {
            path: shown,
            layers,
            hidden,
            stored,
        })
    }

    /// The given config against what the file holds: activation (when stored) and widths.
    fn check(&self, given: &MlpConfig) -> Result<()> {
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
        Ok(())
    }

    fn build(self, config: MlpConfig, dtype: DType, device: &Device) -> Result<Mlp> {
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

fn parse_metadata(
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
    Ok((MlpConfig::new(hidden, activation, init, seed), dtype))
}

/// Host points as an (N, 1) tensor.
pub fn points_tensor(x: &[f64], dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(x, (x.len(), 1), device)?.to_dtype(dtype)?)
}
