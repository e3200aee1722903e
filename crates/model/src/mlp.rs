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

    /// Writes the weights as safetensors in the network's dtype.
    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.named_tensors(), path).map_err(|e| {
            ModelError::Weights {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// Loads weights written by [`Mlp::save`] (or any file with the same names and shapes). The
    /// architecture is read from the file; `activation` cannot be, so the caller names it.
    pub fn load(
        path: &Path,
        activation: Activation,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        check_dtype(dtype)?;
        let werr = |reason: String| ModelError::Weights {
            path: path.display().to_string(),
            reason,
        };
        let map = candle_core::safetensors::load(path, device).map_err(|e| werr(e.to_string()))?;
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        let mut hidden = Vec::new();
        let mut prev_out = 1usize;
        for k in 0.. {
            let (Some(w), Some(b)) = (
                map.get(&format!("layers.{k}.weight")),
                map.get(&format!("layers.{k}.bias")),
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
            weights.push(Var::from_tensor(&w.to_dtype(dtype)?)?);
            biases.push(Var::from_tensor(&b.to_dtype(dtype)?)?);
            hidden.push(out);
            prev_out = out;
        }
        if weights.len() < 2 || prev_out != 1 {
            return Err(werr(format!(
                "expected layers.0 … layers.L with a scalar output; found {} layers ending in width {prev_out}",
                weights.len()
            )));
        }
        hidden.pop();
        let config = MlpConfig::new(hidden, activation, Init::GlorotNormal, 0);
        Ok(Self {
            config,
            weights,
            biases,
        })
    }

    /// The same network in another dtype or on another device (fresh `Var`s).
    pub fn to(&self, dtype: DType, device: &Device) -> Result<Self> {
        check_dtype(dtype)?;
        let conv = |v: &Var| -> Result<Var> {
            Ok(Var::from_tensor(
                &v.as_tensor().to_device(device)?.to_dtype(dtype)?,
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

/// Host points as an (N, 1) tensor.
pub fn points_tensor(x: &[f64], dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(x, (x.len(), 1), device)?.to_dtype(dtype)?)
}
