//! The native half of the `mspinn` Python package (`mspinn._core`): problems, the reference
//! solver, networks, the NTK and training, built on the same library calls as the CLI so that
//! the two agree bit for bit, with numpy arrays in and out. The typed, documented Python API is
//! `python/mspinn/__init__.py`, which wraps these functions' results in dataclasses; the stub
//! `python/mspinn/_core.pyi` describes this module to editors.

mod args;
mod background;
mod errors;
mod network;
mod ntk;
mod problem;
mod train;

use pyo3::prelude::*;

/// mspinn's engine: PINNs for −(a(x/ε)u')' = f and the NTK of their residuals.
#[pymodule(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<problem::Problem>()?;
    m.add_class::<network::Network>()?;
    m.add_function(wrap_pyfunction!(problem::solve, m)?)?;
    m.add_function(wrap_pyfunction!(ntk::ntk, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("cuda_built", cfg!(feature = "cuda"))?;
    Ok(())
}
