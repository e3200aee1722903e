//! The tensor-level entry points: stack the jets, pack the constants once, apply the fused op.

use candle_core::{DType, Device, Tensor};

use crate::layout::{Outputs, Tiles};
use crate::op::ResidualFwd;
use crate::{KernelError, Result};

/// What [`fused_residual`] returns. `residual` and `half_squares` are (N, 1) columns when asked
/// for; `partials` holds one w½r² sum per 256-row tile, PDE tiles first.
#[derive(Clone, Debug)]
pub struct FusedResidual {
    pub residual: Option<Tensor>,
    pub half_squares: Option<Tensor>,
    pub partials: Tensor,
    pub tiles: Tiles,
}

impl FusedResidual {
    /// Σ_{PDE rows} w½r²: the sum of the PDE tiles' partials (a scalar on the op's device,
    /// attached to autograd). The final sum is candle's `sum_all`, deterministic on CPU and CUDA.
    pub fn pde_loss(&self) -> Result<Tensor> {
        Ok(self
            .partials
            .narrow(0, 0, self.tiles.tiles_pde)?
            .sum_all()?)
    }

    /// Σ_{boundary rows} w½r², or `None` when the set has no boundary rows.
    pub fn bc_loss(&self) -> Result<Option<Tensor>> {
        let nb = self.tiles.n_tiles - self.tiles.tiles_pde;
        if nb == 0 {
            return Ok(None);
        }
        Ok(Some(
            self.partials
                .narrow(0, self.tiles.tiles_pde, nb)?
                .sum_all()?,
        ))
    }
}

fn check_dtype(t: &Tensor) -> Result<()> {
    match t.dtype() {
        DType::F32 | DType::F64 => Ok(()),
        d => Err(KernelError::DType(d)),
    }
}

/// (u, u', u'') each (N, 1) or (N,) → the (3, N) layout the op reads. Differentiable (a cat).
pub fn stack_jets(u: &Tensor, du: &Tensor, d2u: &Tensor) -> Result<Tensor> {
    let n = u.elem_count();
    for (name, t) in [("u", u), ("u'", du), ("u''", d2u)] {
        check_dtype(t)?;
        if t.elem_count() != n || t.rank() > 2 || (t.rank() == 2 && t.dim(1)? != 1) {
            return Err(KernelError::Shape {
                what: "jets",
                expected: format!("u, u', u'' all ({n}, 1) like u"),
                got: format!("{name} {:?}", t.dims()),
            });
        }
    }
    let flat = |t: &Tensor| t.reshape(n);
    Ok(Tensor::stack(&[flat(u)?, flat(du)?, flat(d2u)?], 0)?)
}

/// The host columns c0, c1, c2, g, w → one contiguous (5, N) tensor on `device`. Call this once
/// per point set: the constants do not change between training steps.
pub fn pack_constants(cols: [&[f64]; 5], dtype: DType, device: &Device) -> Result<Tensor> {
    if !matches!(dtype, DType::F32 | DType::F64) {
        return Err(KernelError::DType(dtype));
    }
    let n = cols[0].len();
    if let Some((i, c)) = cols.iter().enumerate().find(|(_, c)| c.len() != n) {
        return Err(KernelError::Shape {
            what: "constants",
            expected: format!("5 columns of {n} (c0, c1, c2, g, w)"),
            got: format!("{} has {}", crate::layout::CONST_ROWS[i], c.len()),
        });
    }
    let flat: Vec<f64> = cols.iter().flat_map(|c| c.iter().copied()).collect();
    Ok(Tensor::from_vec(flat, (5, n), &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?)
}

/// r_i = c2 u'' + c1 u' + c0 u − g, w½r² and their per-tile sums in one pass (one kernel on
/// CUDA), differentiable wrt `jets` through the fused backward. Rows [0, n_pde) are PDE rows,
/// the rest boundary rows (their partials are kept apart).
pub fn fused_residual(
    jets: &Tensor,
    consts: &Tensor,
    n_pde: usize,
    outputs: Outputs,
) -> Result<FusedResidual> {
    check_dtype(jets)?;
    let n = jets.dims().get(1).copied().unwrap_or(0);
    if jets.dims() != [3, n] || consts.dims() != [5, n] {
        return Err(KernelError::Shape {
            what: "fused residual inputs",
            expected: "jets (3, N) and constants (5, N) with the same N ≥ 1".into(),
            got: format!("jets {:?}, constants {:?}", jets.dims(), consts.dims()),
        });
    }
    if n == 0 || n_pde > n {
        return Err(KernelError::Config {
            what: "fused residual rows",
            reason: format!("n_pde = {n_pde} and N = {n}: need N ≥ 1 and n_pde ≤ N"),
        });
    }
    if jets.dtype() != consts.dtype() {
        return Err(KernelError::Config {
            what: "fused residual dtypes",
            reason: format!("jets {:?} but constants {:?}", jets.dtype(), consts.dtype()),
        });
    }
    let tiles = Tiles::new(n, n_pde);
    let off = tiles.output_offsets(outputs);
    let out = jets
        .contiguous()?
        .apply_op2(&consts.contiguous()?, ResidualFwd { n_pde, outputs })?;
    let column = |o: Option<usize>| -> Result<Option<Tensor>> {
        o.map(|o| Ok(out.narrow(0, o, n)?.reshape((n, 1))?))
            .transpose()
    };
    Ok(FusedResidual {
        residual: column(off.residual)?,
        half_squares: column(off.half_squares)?,
        partials: out.narrow(0, off.partials, tiles.n_tiles)?,
        tiles,
    })
}
