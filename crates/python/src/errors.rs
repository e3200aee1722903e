//! The crates' errors as Python exceptions: `ValueError` for anything the caller gave (a bad
//! field, expression, file content, size or option — the message names it, as the crates' errors
//! do), `OSError` for I/O, `RuntimeError` for what went wrong in the computation (divergence, a
//! failed eigen-decomposition, candle). Never a panic across the boundary.

use mspinn_model::ModelError;
use mspinn_ntk::NtkError;
use mspinn_problem::ProblemError;
use mspinn_train::TrainError;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// Every error of this crate before it becomes a Python exception.
#[derive(Debug)]
pub enum Error {
    /// An argument of this package's API: `field = value: what was expected`.
    Arg {
        field: &'static str,
        message: String,
    },
    Problem(ProblemError),
    Model(ModelError),
    Ntk(NtkError),
    Train(TrainError),
    Candle(candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A `ValueError` about argument `field`.
pub fn arg(field: &'static str, message: impl Into<String>) -> Error {
    Error::Arg {
        field,
        message: message.into(),
    }
}

impl From<ProblemError> for Error {
    fn from(e: ProblemError) -> Self {
        Error::Problem(e)
    }
}
impl From<ModelError> for Error {
    fn from(e: ModelError) -> Self {
        Error::Model(e)
    }
}
impl From<NtkError> for Error {
    fn from(e: NtkError) -> Self {
        Error::Ntk(e)
    }
}
impl From<TrainError> for Error {
    fn from(e: TrainError) -> Self {
        Error::Train(e)
    }
}
impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(e)
    }
}

fn value(e: &dyn std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}
fn runtime(e: &dyn std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

fn problem(e: ProblemError) -> PyErr {
    match e {
        // The solver could not resolve the data: nothing the caller typed is wrong.
        ProblemError::Unresolved { .. } => runtime(&e),
        _ => value(&e),
    }
}

fn model(e: ModelError) -> PyErr {
    match e {
        ModelError::Candle(_) | ModelError::Kernel(_) => runtime(&e),
        _ => value(&e),
    }
}

fn ntk(e: NtkError) -> PyErr {
    match e {
        NtkError::Option { .. } => value(&e),
        NtkError::Model(m) => model(m),
        _ => runtime(&e),
    }
}

fn train(e: TrainError) -> PyErr {
    match e {
        TrainError::Schedule { .. } | TrainError::Option { .. } => value(&e),
        TrainError::Model(m) => model(m),
        TrainError::Ntk(n) => ntk(n),
        TrainError::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => runtime(&e),
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Arg { field, message } => PyValueError::new_err(format!("{field}: {message}")),
            Error::Problem(e) => problem(e),
            Error::Model(e) => model(e),
            Error::Ntk(e) => ntk(e),
            Error::Train(e) => train(e),
            Error::Candle(e) => runtime(&e),
        }
    }
}
