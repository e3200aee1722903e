//! The arguments the Python API takes as strings and numbers, parsed into the crates' types with
//! errors that name the argument and list what it accepts (the same names as the CLI's flags).

use candle_core::{DType, Device};
use mspinn_model::{Activation, Engine, EngineConfig, EngineOptions, Init};
use mspinn_problem::{parse_number, NumberOrString, PointSpec};
use mspinn_train::{Damping, SolveSpace};
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::errors::{arg, Result};

/// `"f64"` or `"f32"`.
pub fn dtype(s: &str) -> Result<DType> {
    match s {
        "f64" | "float64" => Ok(DType::F64),
        "f32" | "float32" => Ok(DType::F32),
        other => Err(arg(
            "dtype",
            format!("{other:?}: expected \"f64\" or \"f32\""),
        )),
    }
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        _ => "f64",
    }
}

/// `"cpu"`, `"cuda"` or `"cuda:N"`; a build without the `cuda` feature says so (as the CLI does).
pub fn device(s: &str) -> Result<Device> {
    let s = s.trim();
    let ordinal = match s {
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(arg(
                    "device",
                    format!("{s:?}: expected \"cpu\", \"cuda\" or \"cuda:N\""),
                ))
            }
        },
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(arg(
            "device",
            format!(
                "{s:?}: this mspinn was built without the `cuda` feature; build it with \
                 `MATURIN_PEP517_ARGS=\"--features cuda\" pip install ./crates/python` after \
                 the CUDA toolchain of the README's GPU section"
            ),
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        arg(
            "device",
            format!("{s:?}: no CUDA device {ordinal} found: {first}"),
        )
    })
}

pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        other => match other.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            loc => format!("{loc:?}").to_lowercase(),
        },
    }
}

pub fn activation(s: &str) -> Result<Activation> {
    Activation::parse(s).ok_or_else(|| {
        arg(
            "activation",
            format!("{s:?}: expected \"tanh\", \"sin\" or \"softplus\""),
        )
    })
}

pub fn init(s: &str) -> Result<Init> {
    Init::parse(s).ok_or_else(|| {
        arg(
            "init",
            format!("{s:?}: expected \"glorot-normal\", \"glorot-uniform\" or \"normal\""),
        )
    })
}

/// The evaluator: `None` (the device's default: the CPU engine on the CPU), `"cpu"` or
/// `"candle"`, with the CPU engine's threads and tile.
pub fn engine(name: Option<&str>, threads: usize, tile: usize) -> Result<EngineConfig> {
    let engine = match name {
        None => None,
        Some(s) => Some(s.parse::<Engine>().map_err(|_| {
            arg(
                "engine",
                format!("{s:?}: expected \"cpu\" or \"candle\" (or None)"),
            )
        })?),
    };
    if !(1..=256).contains(&threads) {
        return Err(arg(
            "engine_threads",
            format!("{threads}: expected 1 to 256"),
        ));
    }
    if !(1..=65536).contains(&tile) {
        return Err(arg("engine_tile", format!("{tile}: expected 1 to 65536")));
    }
    Ok(EngineConfig::new(engine, EngineOptions { tile, threads }))
}

/// A collocation layout: `"endpoints"`, `"midpoints"` or `"random"` (drawn from `seed`).
pub fn points(kind: &str, n: usize, seed: u64) -> Result<PointSpec> {
    if n == 0 {
        return Err(arg("nc", "0: at least one collocation point"));
    }
    Ok(mspinn_problem::parse_point_kind(kind, n, seed).map_err(|e| e.in_field("points"))?)
}

pub fn lm_space(s: &str) -> Result<SolveSpace> {
    match s {
        "auto" => Ok(SolveSpace::Auto),
        "parameter" => Ok(SolveSpace::Parameter),
        "sample" => Ok(SolveSpace::Sample),
        _ => Err(arg(
            "lm_space",
            format!("{s:?}: expected \"auto\", \"parameter\" or \"sample\""),
        )),
    }
}

pub fn lm_damping(s: &str) -> Result<Damping> {
    match s {
        "marquardt" => Ok(Damping::Marquardt),
        "identity" => Ok(Damping::Identity),
        _ => Err(arg(
            "lm_damping",
            format!("{s:?}: expected \"marquardt\" or \"identity\""),
        )),
    }
}

/// A float, an int or a string such as "1/32", "pi" or "2*pi", as a config file takes them.
pub fn number_or_string(obj: &Bound<'_, PyAny>, field: &'static str) -> Result<NumberOrString> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(NumberOrString::Text(s.to_string()));
    }
    obj.extract::<f64>()
        .map(NumberOrString::Number)
        .map_err(|_| {
            arg(
                field,
                format!("{obj}: expected a number or a string like \"1/32\""),
            )
        })
}

/// ε as a float or a string such as "1/32".
pub fn eps(obj: Option<&Bound<'_, PyAny>>) -> Result<Option<f64>> {
    let Some(obj) = obj else {
        return Ok(None);
    };
    let value = match number_or_string(obj, "eps")? {
        NumberOrString::Number(x) => x,
        NumberOrString::Text(s) => parse_number(&s).map_err(|e| e.in_field("eps"))?,
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(arg("eps", format!("{value}: must be finite and > 0")));
    }
    Ok(Some(value))
}

/// A 1-D float array argument, borrowed without a copy when it is a contiguous float64 numpy
/// array; any other sequence of numbers is copied once.
pub fn with_points<R>(
    obj: &Bound<'_, PyAny>,
    field: &'static str,
    f: impl FnOnce(&[f64]) -> R,
) -> Result<R> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f64>>() {
        if let Ok(s) = a.as_slice() {
            return Ok(f(s));
        }
        return Ok(f(&a.as_array().to_vec()));
    }
    match obj.extract::<Vec<f64>>() {
        Ok(v) => Ok(f(&v)),
        Err(_) => Err(arg(field, "expected a 1-D array (or sequence) of floats")),
    }
}
