//! The GPU engine's step, written against a small backend interface so that it is proven on the
//! host (issue 16): [`Backend`] (buffers, a cuBLAS-convention gemm, the named elementwise kernels
//! of the CUDA headers), [`HostBackend`] (a reference gemm and the host-compiled
//! `__host__ __device__` functions), the memory and launch plans ([`plan`]) and the
//! loss-and-gradient step ([`DeviceStep`]). Tests run the step through the host backend against
//! the CPU engine. With the `cuda` feature, [`cuda::CudaBackend`] runs the same step on a GPU
//! (cuBLAS and the PTX of `kernels/src/engine.cu`); it has not yet run on one. The evaluator that
//! puts the step behind the seam is the next step; until then no command uses this module.

pub mod adam;
pub mod backend;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod host;
pub mod plan;
mod rows;
pub mod step;

pub use adam::{adam_constants, AdamHyper};
pub use backend::{At, Backend, BufId, Gemm, Kernel};
pub use host::HostBackend;
pub use plan::{grid_stride, max_rows, StepPlan};
pub use step::DeviceStep;
