//! Closed forms of eq. (25) and of a = paper-4.2, derived by hand, independent of the crate's
//! expression strings.
#![allow(dead_code)]

use std::f64::consts::PI;

pub fn u(x: f64, eps: f64) -> f64 {
    (2.0 * x).sin() + eps * (x / eps).sin() - eps / PI * (PI / eps).sin() * x
}

pub fn du(x: f64, eps: f64) -> f64 {
    2.0 * (2.0 * x).cos() + (x / eps).cos() - eps / PI * (PI / eps).sin()
}

pub fn d2u(x: f64, eps: f64) -> f64 {
    -4.0 * (2.0 * x).sin() - (x / eps).sin() / eps
}

pub fn a42(y: f64) -> f64 {
    1.0 / (2.1 + 2.0 * y.sin())
}

pub fn da42(y: f64) -> f64 {
    let d = 2.1 + 2.0 * y.sin();
    -2.0 * y.cos() / (d * d)
}

/// −(a(x/ε) u')' = −(a'(x/ε)/ε · u' + a(x/ε) u'').
pub fn darcy_forcing(x: f64, eps: f64) -> f64 {
    -(da42(x / eps) / eps * du(x, eps) + a42(x / eps) * d2u(x, eps))
}

/// n equispaced points on [−π, π], both ends included.
pub fn grid(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = i as f64 / (n - 1) as f64;
            -PI * (1.0 - t) + PI * t
        })
        .collect()
}

pub fn max_abs(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter().fold(0.0, |m, x| m.max(x.abs()))
}
