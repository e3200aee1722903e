//! Launching the PTX of `residual.cu` on candle's CUDA device (feature `cuda`).
//!
//! One thread block per 256-row tile (grid-stride over tiles when there are more tiles than
//! blocks), so the partial sums do not depend on the grid size. Every launch's status is checked
//! (`.w()?`); kernel faults surface at the next synchronising call, which candle checks too.

use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{bail, CudaDevice, CudaStorage, Layout, Result, Shape};

use crate::layout::{Outputs, Tiles, BLOCK};

/// Module name under which candle caches the loaded PTX.
const MODULE: &str = "mspinn_residual";
/// Upper bound on the grid; beyond it blocks loop over tiles/rows (any value ≥ 1 is correct).
const MAX_GRID: usize = 8192;

fn view<'a, T>(s: &'a CudaSlice<T>, l: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(s.slice(a..b)),
        None => bail!("fused residual: {what} must be contiguous"),
    }
}

fn config(blocks: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks.clamp(1, MAX_GRID) as u32, 1, 1),
        block_dim: (BLOCK as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Runs the forward kernel into `out` (length `tiles.output_offsets(outputs).len`), which it
/// overwrites entirely.
pub fn launch_forward<T: DeviceRepr>(
    dev: &CudaDevice,
    jets: &CudaView<'_, T>,
    consts: &CudaView<'_, T>,
    out: &mut CudaSlice<T>,
    tiles: Tiles,
    outputs: Outputs,
    suffix: &str,
) -> Result<()> {
    let func = dev.get_or_load_custom_func(
        &format!("mspinn_residual_fwd_{suffix}"),
        MODULE,
        crate::ptx::RESIDUAL,
    )?;
    let (n, n_pde) = (tiles.n, tiles.n_pde);
    let (wr, we) = (outputs.residual as i32, outputs.half_squares as i32);
    let mut b = func.builder();
    b.arg(jets);
    b.arg(consts);
    b.arg(out);
    b.arg(&n);
    b.arg(&n_pde);
    b.arg(&wr);
    b.arg(&we);
    // SAFETY: argument types and order match mspinn_residual_fwd_* in residual.cu; the kernel
    // stays inside jets (3n), consts (5n) and out (len) by its bounds checks.
    unsafe { b.launch(config(tiles.n_tiles)) }.w()?;
    Ok(())
}

/// Runs the backward kernel into `dj` (3·n elements), which it overwrites entirely.
#[allow(clippy::too_many_arguments)]
pub fn launch_backward<T: DeviceRepr>(
    dev: &CudaDevice,
    jets: &CudaView<'_, T>,
    consts: &CudaView<'_, T>,
    grad: &CudaView<'_, T>,
    dj: &mut CudaSlice<T>,
    tiles: Tiles,
    outputs: Outputs,
    suffix: &str,
) -> Result<()> {
    let func = dev.get_or_load_custom_func(
        &format!("mspinn_residual_bwd_{suffix}"),
        MODULE,
        crate::ptx::RESIDUAL,
    )?;
    let (n, n_pde) = (tiles.n, tiles.n_pde);
    let (wr, we) = (outputs.residual as i32, outputs.half_squares as i32);
    let mut b = func.builder();
    b.arg(jets);
    b.arg(consts);
    b.arg(grad);
    b.arg(dj);
    b.arg(&n);
    b.arg(&n_pde);
    b.arg(&wr);
    b.arg(&we);
    // SAFETY: as for the forward; grad has output_offsets(outputs).len elements (checked by
    // the op), dj 3n.
    unsafe { b.launch(config(tiles.n.div_ceil(BLOCK))) }.w()?;
    Ok(())
}

pub fn forward_storage(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    tiles: Tiles,
    outputs: Outputs,
) -> Result<(CudaStorage, Shape)> {
    let dev = &s1.device;
    let len = tiles.output_offsets(outputs).len;
    let storage = match (&s1.slice, &s2.slice) {
        (CudaStorageSlice::F64(j), CudaStorageSlice::F64(c)) => {
            // SAFETY: every element is written by the kernel (grid-stride over all tiles).
            let mut out = unsafe { dev.alloc::<f64>(len)? };
            let (j, c) = (view(j, l1, "jets")?, view(c, l2, "constants")?);
            launch_forward(dev, &j, &c, &mut out, tiles, outputs, "f64")?;
            CudaStorage::wrap_cuda_slice(out, dev.clone())
        }
        (CudaStorageSlice::F32(j), CudaStorageSlice::F32(c)) => {
            // SAFETY: as above.
            let mut out = unsafe { dev.alloc::<f32>(len)? };
            let (j, c) = (view(j, l1, "jets")?, view(c, l2, "constants")?);
            launch_forward(dev, &j, &c, &mut out, tiles, outputs, "f32")?;
            CudaStorage::wrap_cuda_slice(out, dev.clone())
        }
        _ => bail!("fused residual: jets and constants must both be f32 or both f64"),
    };
    Ok((storage, Shape::from(len)))
}

#[allow(clippy::too_many_arguments)]
pub fn backward_storage(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    s3: &CudaStorage,
    l3: &Layout,
    tiles: Tiles,
    outputs: Outputs,
) -> Result<(CudaStorage, Shape)> {
    let dev = &s1.device;
    let n = tiles.n;
    let storage = match (&s1.slice, &s2.slice, &s3.slice) {
        (CudaStorageSlice::F64(j), CudaStorageSlice::F64(c), CudaStorageSlice::F64(g)) => {
            // SAFETY: every element is written by the kernel (grid-stride over all rows).
            let mut dj = unsafe { dev.alloc::<f64>(3 * n)? };
            let (j, c, g) = (
                view(j, l1, "jets")?,
                view(c, l2, "constants")?,
                view(g, l3, "gradient")?,
            );
            launch_backward(dev, &j, &c, &g, &mut dj, tiles, outputs, "f64")?;
            CudaStorage::wrap_cuda_slice(dj, dev.clone())
        }
        (CudaStorageSlice::F32(j), CudaStorageSlice::F32(c), CudaStorageSlice::F32(g)) => {
            // SAFETY: as above.
            let mut dj = unsafe { dev.alloc::<f32>(3 * n)? };
            let (j, c, g) = (
                view(j, l1, "jets")?,
                view(c, l2, "constants")?,
                view(g, l3, "gradient")?,
            );
            launch_backward(dev, &j, &c, &g, &mut dj, tiles, outputs, "f32")?;
            CudaStorage::wrap_cuda_slice(dj, dev.clone())
        }
        _ => bail!("fused residual backward: jets, constants and gradient must share f32 or f64"),
    };
    Ok((storage, Shape::from((3, n))))
}
