//! `mspinn.Network`: the MLP u(x; θ) — seeded initialisation as the CLI draws it, the
//! safetensors weights files the CLI reads and writes (with their metadata), the flat parameter
//! vector, and u, u', u'' at points from the Taylor-mode jets.

use std::path::PathBuf;

use mspinn_model::mlp::{points_tensor, read_config};
use mspinn_model::{DType, Mlp, MlpConfig};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use crate::args;
use crate::errors::{arg, Error, Result};

/// A fully connected network u(x; θ) = W_L σ(… σ(W_0 x + b_0) …) + b_L with scalar input and
/// output, on one device in one dtype.
///
/// ``Network(widths, activation="tanh", init="glorot-normal", seed=0, dtype="f64",
/// device="cpu")`` draws θ from ``seed`` exactly as ``mspinn`` does for the same options
/// (``init="normal"`` is Fig. 2a's N(0, 1)); ``Network.load(path)`` reads a weights file of
/// ``mspinn train`` (``trial-000/weights.safetensors``) and ``save`` writes one the CLI reads
/// (``mspinn ntk --weights``).
#[pyclass(module = "mspinn._core", frozen)]
pub struct Network {
    pub mlp: Mlp,
}

impl Network {
    /// u, u', u'' at the points, in f64.
    fn jets(&self, x: &[f64]) -> Result<[Vec<f64>; 3]> {
        let xt = points_tensor(x, self.mlp.dtype(), self.mlp.device())?;
        let j = self.mlp.jets(&xt)?;
        let host = |t: &candle_core::Tensor| -> Result<Vec<f64>> {
            Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?)
        };
        Ok([host(&j.u)?, host(&j.du)?, host(&j.d2u)?])
    }
}

#[pymethods]
impl Network {
    #[new]
    #[pyo3(signature = (widths, *, activation="tanh", init="glorot-normal", seed=0, dtype="f64", device="cpu"))]
    fn new(
        widths: Vec<usize>,
        activation: &str,
        init: &str,
        seed: u64,
        dtype: &str,
        device: &str,
    ) -> PyResult<Self> {
        let cfg = MlpConfig::new(
            widths,
            args::activation(activation)?,
            args::init(init)?,
            seed,
        );
        let mlp =
            Mlp::new(cfg, args::dtype(dtype)?, &args::device(device)?).map_err(Error::from)?;
        Ok(Self { mlp })
    }

    /// Reads a safetensors weights file written by mspinn (the architecture comes from its
    /// metadata) in ``dtype`` (default: the file's). A file without mspinn's metadata needs
    /// ``activation`` (its widths come from the tensor shapes).
    #[staticmethod]
    #[pyo3(signature = (path, *, dtype=None, device="cpu", activation=None))]
    fn load(
        path: PathBuf,
        dtype: Option<&str>,
        device: &str,
        activation: Option<&str>,
    ) -> PyResult<Self> {
        if !path.is_file() {
            return Err(pyo3::exceptions::PyFileNotFoundError::new_err(format!(
                "no weights file {}",
                path.display()
            )));
        }
        let device = args::device(device)?;
        let dtype = dtype.map(args::dtype).transpose()?;
        let mlp = match (read_config(&path).map_err(Error::from)?, activation) {
            (Some((_, stored)), _) => Mlp::load_with_config(&path, &device)
                .and_then(|m| m.to(dtype.unwrap_or(stored), &device)),
            (None, Some(a)) => Mlp::load(
                &path,
                args::activation(a)?,
                dtype.unwrap_or(DType::F64),
                &device,
            ),
            (None, None) => {
                return Err(arg(
                    "activation",
                    format!(
                        "{} has no mspinn metadata; give the activation it was trained with",
                        path.display()
                    ),
                )
                .into())
            }
        }
        .map_err(Error::from)?;
        Ok(Self { mlp })
    }

    /// Writes the weights as safetensors with the architecture in the metadata: the file
    /// ``mspinn train`` writes and ``mspinn ntk --weights`` reads.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        Ok(self.mlp.save(&path).map_err(Error::from)?)
    }

    /// The same network in another dtype or on another device (a copy: training it leaves
    /// this one as it is).
    #[pyo3(signature = (*, dtype=None, device=None))]
    fn to(&self, dtype: Option<&str>, device: Option<&str>) -> PyResult<Self> {
        let dtype = dtype
            .map(args::dtype)
            .transpose()?
            .unwrap_or(self.mlp.dtype());
        let device = match device {
            Some(d) => args::device(d)?,
            None => self.mlp.device().clone(),
        };
        Ok(Self {
            mlp: self.mlp.to(dtype, &device).map_err(Error::from)?,
        })
    }

    /// A copy with its own parameters.
    fn copy(&self) -> PyResult<Self> {
        self.to(None, None)
    }

    /// Hidden layer widths.
    #[getter]
    fn widths(&self) -> Vec<usize> {
        self.mlp.config().hidden.clone()
    }
    #[getter]
    fn activation(&self) -> &'static str {
        self.mlp.activation().name()
    }
    #[getter]
    fn init(&self) -> &'static str {
        self.mlp.config().init.name()
    }
    #[getter]
    fn seed(&self) -> u64 {
        self.mlp.config().seed
    }
    /// ``"f64"`` or ``"f32"``.
    #[getter]
    fn dtype(&self) -> &'static str {
        args::dtype_name(self.mlp.dtype())
    }
    #[getter]
    fn device(&self) -> String {
        args::device_name(self.mlp.device())
    }
    /// N_p, the number of parameters.
    #[getter]
    fn num_params(&self) -> usize {
        self.mlp.num_params()
    }

    /// θ as one float64 vector, layer by layer (weight row-major, then bias): the order of the
    /// NTK's Jacobian columns and of the weights file.
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(self
            .mlp
            .flat_params()
            .map_err(Error::from)?
            .into_pyarray(py))
    }

    /// Replaces θ (in the order of ``parameters()``), in place.
    fn set_parameters(&self, theta: Bound<'_, PyAny>) -> PyResult<()> {
        args::with_points(&theta, "theta", |t| self.mlp.set_flat_params(t))?
            .map_err(Error::from)?;
        Ok(())
    }

    /// u, u' and u'' at the points ``x`` (1-D), from one Taylor-mode forward pass, as float64
    /// arrays.
    #[allow(clippy::type_complexity)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
    )> {
        let [u, du, d2u] = args::with_points(&x, "x", |x| self.jets(x))??;
        Ok((
            u.into_pyarray(py),
            du.into_pyarray(py),
            d2u.into_pyarray(py),
        ))
    }

    /// u at the points ``x`` (1-D), as a float64 array.
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let u = args::with_points(&x, "x", |x| self.mlp.eval_points(x))?.map_err(Error::from)?;
        Ok(u.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "Network(widths={:?}, activation={:?}, init={:?}, seed={}, dtype={:?}, device={:?})",
            self.mlp.config().hidden,
            self.mlp.activation().name(),
            self.mlp.config().init.name(),
            self.mlp.config().seed,
            args::dtype_name(self.mlp.dtype()),
            args::device_name(self.mlp.device())
        )
    }
}
