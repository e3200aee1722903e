//! Seeded host-side initialisation.
//!
//! Every weight is drawn on the host from one ChaCha8 stream, in a fixed order (layer by layer,
//! weight row-major then bias), in f64, and only then converted to the run's dtype and device. A
//! seed therefore names the same network on the CPU and on a GPU, in f32 and in f64.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// Keras/DeepXDE "Glorot normal": a normal truncated at two standard deviations, rescaled so
    /// the variance is 2/(fan_in + fan_out). Biases zero. The paper's Fig. 2b and Fig. 4 use it.
    #[default]
    GlorotNormal,
    /// U(−l, l) with l = √(6/(fan_in + fan_out)). Biases zero.
    GlorotUniform,
    /// Every weight and bias from N(0, 1), as in the paper's Fig. 2a.
    Normal,
}

/// 1/σ of N(0,1) truncated to [−2, 2]; Keras divides its stddev by this.
const TRUNCATED_NORMAL_STD: f64 = 0.879_625_661_034_239_8;

impl Init {
    pub fn parse(name: &str) -> Option<Init> {
        match name.to_ascii_lowercase().as_str() {
            "glorot-normal" | "glorot_normal" | "glorot" => Some(Init::GlorotNormal),
            "glorot-uniform" | "glorot_uniform" => Some(Init::GlorotUniform),
            "normal" | "standard-normal" => Some(Init::Normal),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Init::GlorotNormal => "glorot-normal",
            Init::GlorotUniform => "glorot-uniform",
            Init::Normal => "normal",
        }
    }

    /// Draws every layer's (weight out×in row-major, bias) for the layer sizes `dims`
    /// (input, hidden…, output), from one stream seeded with `seed`.
    pub fn draw(self, dims: &[usize], seed: u64) -> Vec<(Vec<f64>, Vec<f64>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        dims.windows(2)
            .map(|w| {
                let (fan_in, fan_out) = (w[0], w[1]);
                let n = fan_in * fan_out;
                let weight: Vec<f64> = match self {
                    Init::GlorotNormal => {
                        let std = (2.0 / (fan_in + fan_out) as f64).sqrt() / TRUNCATED_NORMAL_STD;
                        (0..n).map(|_| std * truncated_normal(&mut rng)).collect()
                    }
                    Init::GlorotUniform => {
                        let l = (6.0 / (fan_in + fan_out) as f64).sqrt();
                        (0..n).map(|_| rng.random_range(-l..l)).collect()
                    }
                    Init::Normal => (0..n).map(|_| StandardNormal.sample(&mut rng)).collect(),
                };
                let bias = match self {
                    Init::Normal => (0..fan_out)
                        .map(|_| StandardNormal.sample(&mut rng))
                        .collect(),
                    _ => vec![0.0; fan_out],
                };
                (weight, bias)
            })
            .collect()
    }
}

/// N(0,1) conditioned on |z| ≤ 2, by rejection (acceptance ≈ 95%).
fn truncated_normal(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let z: f64 = StandardNormal.sample(rng);
        if z.abs() <= 2.0 {
            return z;
        }
    }
}
