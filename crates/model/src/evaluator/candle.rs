//! [`Evaluator`] through candle: the jets as tensor ops, the fused residual op, first-order
//! autograd for ∂L/∂θ and the batched Jacobian sweep ([`super::jacobian`]). Runs on any device
//! candle supports; on the CPU it is the independent reference the CPU engine is tested against.

use std::ops::Range;

use candle_core::{DType, Tensor};

use super::{
    check_dim, check_rows, jacobian_rows, Engine, Evaluator, Gradient, RowCoefficients, Shape,
};
use crate::{LossTerms, Mlp, ResidualSet, Result};

/// candle behind the seam. Holds nothing but the shape it checks: candle allocates per op.
pub struct CandleEvaluator {
    shape: Shape,
}

impl CandleEvaluator {
    pub fn new(mlp: &Mlp) -> Self {
        Self {
            shape: Shape::of(mlp),
        }
    }
}

impl Evaluator for CandleEvaluator {
    fn engine(&self) -> Engine {
        Engine::Candle
    }

    fn loss(&mut self, mlp: &Mlp, set: &ResidualSet) -> Result<LossTerms> {
        self.shape.check(mlp)?;
        check_dim(mlp, set)?;
        Ok(mlp.loss_tensor(set)?.1)
    }

    fn loss_and_grad(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        grad: &mut Gradient,
    ) -> Result<LossTerms> {
        self.shape.check(mlp)?;
        check_dim(mlp, set)?;
        let (total, terms) = mlp.loss_tensor(set)?;
        let mut store = total.backward()?;
        let grads = mlp
            .vars()
            .iter()
            .map(|v| match store.remove(v.as_tensor()) {
                Some(g) => Ok(g),
                // A parameter the loss does not touch (e.g. the output bias when only u''
                // enters) has a zero gradient, not a missing one.
                None => Ok(v.as_tensor().zeros_like()?),
            })
            .collect::<Result<Vec<_>>>()?;
        *grad = Gradient::Device(grads);
        Ok(terms)
    }

    fn residuals(&mut self, mlp: &Mlp, set: &ResidualSet, out: &mut Vec<f64>) -> Result<LossTerms> {
        self.shape.check(mlp)?;
        check_dim(mlp, set)?;
        let (e, r) = mlp.weighted_half_squares(set)?;
        *out = r.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
        let e: Vec<f64> = e.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
        let pde: f64 = e[..set.n_pde].iter().sum();
        let bc: f64 = e[set.n_pde..].iter().sum();
        Ok(LossTerms {
            total: pde + bc,
            pde,
            bc,
        })
    }

    fn jacobian(&mut self, mlp: &Mlp, set: &ResidualSet, rows: Range<usize>) -> Result<Tensor> {
        self.shape.check(mlp)?;
        check_dim(mlp, set)?;
        check_rows(set, &rows)?;
        let (start, len) = (rows.start, rows.len());
        jacobian_rows(
            mlp,
            &set.x.narrow(0, start, len)?,
            RowCoefficients {
                c0: &set.c0.narrow(0, start, len)?,
                c1: &set.c1.narrow(0, start, len)?,
                c2: &set.c2.narrow(0, start, len)?,
            },
        )
    }

    fn jacobian_f64(
        &mut self,
        mlp: &Mlp,
        set: &ResidualSet,
        rows: Range<usize>,
        out: &mut Vec<f64>,
    ) -> Result<()> {
        *out = self
            .jacobian(mlp, set, rows)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1()?;
        Ok(())
    }
}
