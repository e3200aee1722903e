//! Which NTK convention a number is in.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// K = J J^T D with the loss weights of eq. (7): K_uu carries 1/N_c, K_bb carries λ/N_b
    /// (appendix A; the Lemma's statement omits the latter, the derivation has it).
    #[default]
    Appendix,
    /// K = J J^T: section 4.1's formula for K_uu, without 1/N_c.
    Unscaled,
}

impl Scaling {
    pub fn name(self) -> &'static str {
        match self {
            Scaling::Appendix => "appendix",
            Scaling::Unscaled => "unscaled",
        }
    }
    pub fn parse(s: &str) -> Option<Scaling> {
        match s {
            "appendix" => Some(Scaling::Appendix),
            "unscaled" => Some(Scaling::Unscaled),
            _ => None,
        }
    }
    /// The column weights D under this convention, given the loss weights.
    pub fn weights(self, loss_weights: &[f64]) -> Vec<f64> {
        match self {
            Scaling::Appendix => loss_weights.to_vec(),
            Scaling::Unscaled => vec![1.0; loss_weights.len()],
        }
    }
}
