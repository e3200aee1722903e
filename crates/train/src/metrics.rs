//! The paper's accuracy metrics over independent trials (section 4.2).
//!
//! On an evaluation grid (1000 equispaced points in the paper) with exact solution u and trial
//! networks u_1 … u_M: the error of the mean network max_x |u(x) − E u_NN(x)|, the mean over x of
//! the variance across trials (population variance, ddof = 0, as numpy's default), and per trial the
//! relative L2 and L∞ errors. The same against the homogenised solution ū, when there is one, asks
//! whether the PINN learned ū rather than u^ε.

use serde::{Deserialize, Serialize};

/// Points of the equispaced grid (both ends included) that a trained network is measured on:
/// the paper's 1000. The CLI's result.json and history.csv and the Python package's metrics
/// use this one number.
pub const METRICS_GRID_POINTS: usize = 1000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialMetrics {
    pub seed: u64,
    pub rel_l2: f64,
    pub rel_linf: f64,
    pub final_loss: f64,
    pub seconds: f64,
    pub iterations: u64,
    pub rel_l2_vs_homogenized: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialsSummary {
    pub trials: usize,
    pub max_error_mean_network: f64,
    pub mean_variance: f64,
    pub rel_l2: Vec<f64>,
    pub rel_linf: Vec<f64>,
    pub max_error_vs_homogenized: Option<f64>,
    pub rel_l2_mean_network_vs_homogenized: Option<f64>,
    pub rel_l2_mean_network: f64,
}

/// The median (the mean of the middle two for an even count; NaN for none): what summaries
/// over trials report.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => s[n / 2],
        _ => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// ‖a − b‖₂ / ‖b‖₂ on the grid.
pub fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// max |a − b| / max |b| on the grid.
pub fn rel_linf(a: &[f64], b: &[f64]) -> f64 {
    max_abs_diff(a, b) / b.iter().fold(0.0f64, |m, y| m.max(y.abs()))
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

/// Pointwise mean over trials.
pub fn mean_network(preds: &[Vec<f64>]) -> Vec<f64> {
    let n = preds.first().map_or(0, Vec::len);
    let m = preds.len() as f64;
    (0..n)
        .map(|i| preds.iter().map(|p| p[i]).sum::<f64>() / m)
        .collect()
}

/// Summarises trials `preds` (each on the grid) against `exact` and optionally `homogenized`.
pub fn summarise(preds: &[Vec<f64>], exact: &[f64], homogenized: Option<&[f64]>) -> TrialsSummary {
    let mean = mean_network(preds);
    let m = preds.len() as f64;
    let n = exact.len();
    let mean_variance = (0..n)
        .map(|i| preds.iter().map(|p| (p[i] - mean[i]).powi(2)).sum::<f64>() / m)
        .sum::<f64>()
        / n as f64;
    TrialsSummary {
        trials: preds.len(),
        max_error_mean_network: max_abs_diff(exact, &mean),
        mean_variance,
        rel_l2: preds.iter().map(|p| rel_l2(p, exact)).collect(),
        rel_linf: preds.iter().map(|p| rel_linf(p, exact)).collect(),
        max_error_vs_homogenized: homogenized.map(|h| max_abs_diff(h, &mean)),
        rel_l2_mean_network_vs_homogenized: homogenized.map(|h| rel_l2(&mean, h)),
        rel_l2_mean_network: rel_l2(&mean, exact),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.37e-5, 3.73e-4]), 0.5 * (4.37e-5 + 3.73e-4));
        assert_eq!(median(&[5.0, 1.0, 4.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summary_matches_hand_computation() {
        let exact = vec![1.0, 2.0];
        let preds = vec![vec![1.0, 3.0], vec![3.0, 1.0]];
        let s = summarise(&preds, &exact, Some(&[0.0, 0.0]));
        // mean network = (2, 2): max error 1; variances (1, 1) → mean 1.
        assert_eq!(s.max_error_mean_network, 1.0);
        assert_eq!(s.mean_variance, 1.0);
        assert!((s.rel_l2[0] - (1.0f64 / 5.0).sqrt()).abs() < 1e-15);
        assert_eq!(s.rel_linf[1], 1.0);
        assert_eq!(s.max_error_vs_homogenized, Some(2.0));
    }
}
