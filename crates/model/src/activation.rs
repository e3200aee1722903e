//! Smooth activations with the three derivatives the jets need.
//!
//! The Taylor-mode forward needs σ, σ' and σ'' of the pre-activation; the per-sample Jacobian's
//! reverse sweep over the jets also needs σ'''. Each is written once here, as tensor expressions
//! that reuse the already computed σ where that is cheaper (tanh: σ' = 1 − t², σ'' = −2tσ').

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Tanh,
    Sin,
    Softplus,
}

/// σ and its first three derivatives evaluated at the same pre-activation.
pub struct ActivationDerivs {
    pub s0: Tensor,
    pub s1: Tensor,
    pub s2: Tensor,
    pub s3: Option<Tensor>,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Activation> {
        match name.to_ascii_lowercase().as_str() {
            "tanh" => Some(Activation::Tanh),
            "sin" => Some(Activation::Sin),
            "softplus" => Some(Activation::Softplus),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Sin => "sin",
            Activation::Softplus => "softplus",
        }
    }

    /// σ(z), σ'(z), σ''(z) and, when `third` is set, σ'''(z), elementwise.
    pub fn derivs(self, z: &Tensor, third: bool) -> Result<ActivationDerivs> {
        Ok(match self {
            Activation::Tanh => {
                let t = z.tanh()?;
                // σ' = 1 − t²
                let s1 = t.sqr()?.affine(-1.0, 1.0)?;
                // σ'' = −2 t σ'
                let ts1 = (&t * &s1)?;
                let s2 = ts1.affine(-2.0, 0.0)?;
                // σ''' = −2σ'² + 4t²σ' = σ'(4t² − 2σ')  (from d/dz of −2tσ')
                let s3 = if third {
                    Some((&s1 * (t.sqr()?.affine(4.0, 0.0)? - s1.affine(2.0, 0.0)?)?)?)
                } else {
                    None
                };
                ActivationDerivs { s0: t, s1, s2, s3 }
            }
            Activation::Sin => {
                let s0 = z.sin()?;
                let s1 = z.cos()?;
                let s2 = s0.neg()?;
                let s3 = if third { Some(s1.neg()?) } else { None };
                ActivationDerivs { s0, s1, s2, s3 }
            }
            Activation::Softplus => {
                // softplus(z) = max(z,0) + ln(1 + e^{−|z|}) avoids overflow for large |z|.
                let s0 = (z.relu()? + z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
                // σ' = logistic(z); σ'' = s(1−s); σ''' = s(1−s)(1−2s)
                let s = candle_nn_free_sigmoid(z)?;
                let one_minus = s.affine(-1.0, 1.0)?;
                let s2 = (&s * &one_minus)?;
                let s3 = if third {
                    Some((&s2 * s.affine(-2.0, 1.0)?)?)
                } else {
                    None
                };
                ActivationDerivs { s0, s1: s, s2, s3 }
            }
        })
    }

    /// Scalar σ^(k)(z) for k = 0..=3, in f64: the independent reference the tests compare against.
    pub fn scalar(self, z: f64, k: usize) -> f64 {
        match self {
            Activation::Tanh => {
                let t = z.tanh();
                let s1 = 1.0 - t * t;
                match k {
                    0 => t,
                    1 => s1,
                    2 => -2.0 * t * s1,
                    _ => -2.0 * s1 * s1 + 4.0 * t * t * s1,
                }
            }
            Activation::Sin => match k % 4 {
                0 => z.sin(),
                1 => z.cos(),
                2 => -z.sin(),
                _ => -z.cos(),
            },
            Activation::Softplus => {
                let s = 1.0 / (1.0 + (-z).exp());
                match k {
                    0 => z.max(0.0) + (-z.abs()).exp().ln_1p(),
                    1 => s,
                    2 => s * (1.0 - s),
                    _ => s * (1.0 - s) * (1.0 - 2.0 * s),
                }
            }
        }
    }
}

/// logistic(z) = ½(1 + tanh(z/2)): stable for every z and differentiable by candle's autograd.
fn candle_nn_free_sigmoid(z: &Tensor) -> Result<Tensor> {
    Ok(z.affine(0.5, 0.0)?.tanh()?.affine(0.5, 0.5)?)
}
