//! The fused residual as two candle CustomOps: [`ResidualFwd`] (jets, constants → r, w½r²,
//! tile partial sums) and [`ResidualBwd`] (its gradient wrt the jets), each with a CPU and a CUDA
//! implementation of the same arithmetic. `ResidualFwd::bwd` applies `ResidualBwd`, so candle's
//! autograd runs through the fused op on either device and on into the network.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use crate::host::{backward, forward};
use crate::layout::{Outputs, Tiles};

/// Forward: `jets` (3, N) = (u, u', u''), `consts` (5, N) = (c0, c1, c2, g, w) → a flat vector
/// `[r (N)?][w½r² (N)?][partials (n_tiles)]` (see [`Tiles::output_offsets`]).
#[derive(Clone, Copy, Debug)]
pub struct ResidualFwd {
    pub n_pde: usize,
    pub outputs: Outputs,
}

/// Backward: (`jets`, `consts`, gradient of the forward's flat output) → dL/d`jets`, (3, N).
/// The residual is recomputed from the jets rather than stored, so a training forward can write
/// only the partial sums.
#[derive(Clone, Copy, Debug)]
pub struct ResidualBwd {
    pub n_pde: usize,
    pub outputs: Outputs,
}

/// Checks the (3, N) / (5, N) layouts; returns the tile decomposition.
fn check_inputs(n_pde: usize, jets: &Layout, consts: &Layout) -> candle_core::Result<Tiles> {
    let (jd, cd) = (jets.shape().dims(), consts.shape().dims());
    if jd.len() != 2 || jd[0] != 3 {
        bail!(
            "fused residual: jets must be (3, N) = (u, u', u''), got {jets:?}",
            jets = jd
        );
    }
    let n = jd[1];
    if cd != [5, n] {
        bail!("fused residual: constants must be (5, {n}) = (c0, c1, c2, g, w), got {cd:?}");
    }
    if n == 0 {
        bail!("fused residual: needs at least one row");
    }
    if n_pde > n {
        bail!("fused residual: n_pde = {n_pde} exceeds the {n} rows");
    }
    Ok(Tiles::new(n, n_pde))
}

fn contiguous<'a, T>(v: &'a [T], l: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("fused residual: {what} must be contiguous"),
    }
}

impl CustomOp2 for ResidualFwd {
    fn name(&self) -> &'static str {
        "mspinn-residual-fwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let tiles = check_inputs(self.n_pde, l1, l2)?;
        let len = tiles.output_offsets(self.outputs).len;
        let storage = match (s1, s2) {
            (CpuStorage::F64(j), CpuStorage::F64(c)) => {
                let mut out = vec![0.0f64; len];
                let (j, c) = (contiguous(j, l1, "jets")?, contiguous(c, l2, "constants")?);
                forward(j, c, tiles, self.outputs, &mut out);
                CpuStorage::F64(out)
            }
            (CpuStorage::F32(j), CpuStorage::F32(c)) => {
                let mut out = vec![0.0f32; len];
                let (j, c) = (contiguous(j, l1, "jets")?, contiguous(c, l2, "constants")?);
                forward(j, c, tiles, self.outputs, &mut out);
                CpuStorage::F32(out)
            }
            _ => bail!(
                "fused residual: jets and constants must both be f32 or both f64, got {:?} and {:?}",
                s1.dtype(),
                s2.dtype()
            ),
        };
        Ok((storage, Shape::from(len)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let tiles = check_inputs(self.n_pde, l1, l2)?;
        crate::cuda::forward_storage(s1, l1, s2, l2, tiles, self.outputs)
    }

    /// dL/djets from the fused backward; the constants are data, not parameters (no gradient).
    fn bwd(
        &self,
        jets: &Tensor,
        consts: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // Gradients arriving through sum/broadcast can be strided; the kernels want flat memory.
        let grad = grad_res.contiguous()?;
        let bwd = ResidualBwd {
            n_pde: self.n_pde,
            outputs: self.outputs,
        };
        let dj = jets.apply_op3_no_bwd(consts, &grad, &bwd)?;
        Ok((Some(dj), None))
    }
}

impl CustomOp3 for ResidualBwd {
    fn name(&self) -> &'static str {
        "mspinn-residual-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let tiles = check_grad(self, l1, l2, l3)?;
        let n = tiles.n;
        let storage = match (s1, s2, s3) {
            (CpuStorage::F64(j), CpuStorage::F64(c), CpuStorage::F64(g)) => {
                let mut dj = vec![0.0f64; 3 * n];
                let j = contiguous(j, l1, "jets")?;
                let c = contiguous(c, l2, "constants")?;
                let g = contiguous(g, l3, "gradient")?;
                backward(j, c, g, tiles, self.outputs, &mut dj);
                CpuStorage::F64(dj)
            }
            (CpuStorage::F32(j), CpuStorage::F32(c), CpuStorage::F32(g)) => {
                let mut dj = vec![0.0f32; 3 * n];
                let j = contiguous(j, l1, "jets")?;
                let c = contiguous(c, l2, "constants")?;
                let g = contiguous(g, l3, "gradient")?;
                backward(j, c, g, tiles, self.outputs, &mut dj);
                CpuStorage::F32(dj)
            }
            _ => bail!(
                "fused residual backward: mixed dtypes {:?}, {:?}, {:?}",
                s1.dtype(),
                s2.dtype(),
                s3.dtype()
            ),
        };
        Ok((storage, Shape::from((3, n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let tiles = check_grad(self, l1, l2, l3)?;
        crate::cuda::backward_storage(s1, l1, s2, l2, s3, l3, tiles, self.outputs)
    }
}

fn check_grad(
    op: &ResidualBwd,
    jets: &Layout,
    consts: &Layout,
    grad: &Layout,
) -> candle_core::Result<Tiles> {
    let tiles = check_inputs(op.n_pde, jets, consts)?;
    let len = tiles.output_offsets(op.outputs).len;
    if grad.shape().elem_count() != len {
        bail!(
            "fused residual backward: gradient has {} elements, the forward output {len}",
            grad.shape().elem_count()
        );
    }
    Ok(tiles)
}
