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

mod file;

pub use file::read_config;
use file::{dtype_name, packed, WeightsFile};
use file::{FORMAT_VERSION, META_SEED};
use file::{META_ACTIVATION, META_DTYPE, META_FORMAT, META_HIDDEN, META_INIT, META_INPUT_DIM};

/// Architecture and initialisation of a scalar-output MLP on x ∈ ℝ^d.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Hidden layer widths, e.g. `[40, 40, 40, 40]` for the paper's 4×40 network.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub init: Init,
    pub seed: u64,
    /// d, the input dimension (1 unless a 2-D problem asks for 2). Left out of the serialised
    /// form when 1, so every 1-D record and weights file reads and writes as before.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub input_dim: usize,
}

fn one() -> usize {
    1
}
fn is_one(d: &usize) -> bool {
    *d == 1
}

impl MlpConfig {
    pub fn new(hidden: Vec<usize>, activation: Activation, init: Init, seed: u64) -> Self {
        Self {
            hidden,
            activation,
            init,
            seed,
            input_dim: 1,
        }
    }

    /// The same network on x ∈ ℝ^d.
    pub fn with_input_dim(mut self, d: usize) -> Self {
        self.input_dim = d;
        self
    }

    /// Layer sizes including the input and the scalar output: `[d, hidden…, 1]`.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = Vec::with_capacity(self.hidden.len() + 2);
        d.push(self.input_dim);
        d.extend_from_slice(&self.hidden);
        d.push(1);
        d
    }

    /// N_p, the number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.dims().windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    pub fn validate(&self) -> Result<()> {
        if self.input_dim == 0 {
            return Err(ModelError::Config {
                field: "input_dim",
                value: "0".into(),
                reason: "the network needs at least one input coordinate".into(),
            });
        }
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
        let mut meta = HashMap::from([
            (META_FORMAT.to_owned(), FORMAT_VERSION.to_owned()),
            (META_ACTIVATION.to_owned(), c.activation.name().to_owned()),
            (META_HIDDEN.to_owned(), hidden.join(",")),
            (META_INIT.to_owned(), c.init.name().to_owned()),
            (META_SEED.to_owned(), c.seed.to_string()),
            (META_DTYPE.to_owned(), dtype_name(self.dtype()).to_owned()),
        ]);
        // Written only for d ≠ 1: 1-D files stay byte-identical and a file without the key
        // is a 1-D network.
        if c.input_dim != 1 {
            meta.insert(META_INPUT_DIM.to_owned(), c.input_dim.to_string());
        }
        meta
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
            None => MlpConfig::new(file.hidden.clone(), activation, Init::GlorotNormal, 0)
                .with_input_dim(file.input_dim),
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

    /// u at host points of ℝ^d (row-major, d = the network's input dimension), as f64.
    pub fn eval_points_nd(&self, x: &[f64]) -> Result<Vec<f64>> {
        let xt = points_tensor_nd(x, self.config.input_dim, self.dtype(), self.device())?;
        Ok(self
            .forward(&xt)?
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_vec1()?)
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

/// Host points as an (N, 1) tensor.
pub fn points_tensor(x: &[f64], dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(x, (x.len(), 1), device)?.to_dtype(dtype)?)
}

/// Host points in ℝ^d, row-major (N·d values), as an (N, d) tensor.
pub fn points_tensor_nd(x: &[f64], d: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    if d == 0 || !x.len().is_multiple_of(d) {
        return Err(ModelError::Shape {
            what: "points".into(),
            expected: format!("a multiple of d = {d} coordinates"),
            got: x.len().to_string(),
        });
    }
    Ok(Tensor::from_slice(x, (x.len() / d, d), device)?.to_dtype(dtype)?)
}
