//! Buffers in flat parameter order (W_0 row-major, b_0, W_1, b_1, …, the order of
//! [`crate::Mlp::vars`], the Jacobian columns and the safetensors file), and the in-place update
//! of a CPU variable that optimisers keeping their state on the host use.

use std::cell::RefCell;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Var};

use crate::{ModelError, Real, Result};

/// ∂L/∂θ in flat parameter order, in the network's dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum FlatGrad {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl FlatGrad {
    pub fn zeros(dtype: DType, n: usize) -> Result<Self> {
        match dtype {
            DType::F32 => Ok(Self::F32(vec![0.0; n])),
            DType::F64 => Ok(Self::F64(vec![0.0; n])),
            other => Err(ModelError::DType(other)),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Self::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Self::F64(v) => v.clone(),
        }
    }
    /// As [`Self::to_f64`] without copying an f64 vector.
    pub fn into_f64(self) -> Vec<f64> {
        match self {
            Self::F32(v) => v.into_iter().map(f64::from).collect(),
            Self::F64(v) => v,
        }
    }
}

/// Calls `f` with the values of a contiguous CPU variable of dtype T, mutably and in place (no
/// copy, no allocation): for optimisers that keep their state on the host.
pub fn update_var_in_place<T: Real>(var: &Var, f: &mut dyn FnMut(&mut [T])) -> Result<()> {
    type HostUpdate<'a, T> = RefCell<&'a mut dyn FnMut(&mut [T])>;
    struct Op<'a, T>(HostUpdate<'a, T>);
    impl<T: Real> candle_core::InplaceOp1 for Op<'_, T> {
        fn name(&self) -> &'static str {
            "mspinn-host-update"
        }
        fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
            let (a, b) = layout.contiguous_offsets().ok_or_else(|| {
                candle_core::Error::Msg("host update of a non-contiguous variable".into())
            })?;
            let dt = storage.dtype();
            let s: &mut [T] = match storage {
                CpuStorage::F32(v) if <T as candle_core::WithDType>::DTYPE == DType::F32 => {
                    // SAFETY: T is f32 here (checked through <T as candle_core::WithDType>::DTYPE).
                    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut T, v.len()) }
                }
                CpuStorage::F64(v) if <T as candle_core::WithDType>::DTYPE == DType::F64 => {
                    // SAFETY: T is f64 here (checked through <T as candle_core::WithDType>::DTYPE).
                    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut T, v.len()) }
                }
                _ => {
                    return Err(candle_core::Error::Msg(format!(
                        "host update as {:?} of a {dt:?} variable",
                        <T as candle_core::WithDType>::DTYPE
                    )))
                }
            };
            (self.0.borrow_mut())(&mut s[a..b]);
            Ok(())
        }
    }
    var.as_tensor().inplace_op1(&Op(RefCell::new(f)))?;
    Ok(())
}
