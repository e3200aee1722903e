//! Composite Gauss–Legendre quadrature on adaptively refined panels.
//!
//! The integrands of this crate (the Darcy forcing of appendix C, 1/a(x/ε)) have poles at a
//! distance ~0.3ε from the real axis, so a fixed panel width that is merely "a fraction of a
//! period" either wastes work or loses digits. Each panel is therefore accepted only when the
//! last Legendre coefficients of every sampled function are negligible, which bounds the error of
//! both the panel quadrature and the panel's polynomial interpolant (the latter is what the
//! solver integrates to get F(x) and u(x) inside a panel).

use std::sync::OnceLock;

use crate::error::ProblemError;

/// Nodes per panel. 24 rather than 16: on the ε = 1/1000 two-scale Darcy problem, 24 nodes
/// reach a 2e-11 relative error with ~20% fewer evaluations of the forcing (the dominant cost)
/// than 16 nodes, which need narrower panels around the near-poles of the forcing.
pub(crate) const N: usize = 24;

/// A panel is accepted when the two highest Legendre coefficients are below this fraction of the
/// function's magnitude on the panel. Relative to the panel, not to the global maximum: the
/// Darcy forcing is ~1/ε larger near the poles of a than elsewhere, and a global criterion would
/// leave the smooth stretches, which dominate F(x), under-resolved.
const TAIL_TOL: f64 = 1e-13;

/// ... but no panel is judged against less than this fraction of the largest magnitude seen so
/// far, so that a function that is locally ~0 (or underflows) does not force endless bisection.
const SCALE_FLOOR: f64 = 1e-8;

/// Rounding noise in the samples (sin(x/ε) carries a relative error ~|x/ε|·1e-16) gives a flat
/// Legendre tail that no bisection removes. A tail below this level that bisection no longer
/// halves is taken to be such noise and accepted.
const NOISE_TOL: f64 = 1e-9;

/// Bisections allowed below an initial panel before a function is declared unresolvable.
const MAX_DEPTH: u32 = 24;

/// Upper bound on the number of panels, so an absurd length scale fails with an error instead of
/// exhausting memory.
pub(crate) const MAX_PANELS: usize = 1 << 23;

/// The N-point Gauss–Legendre rule on [−1, 1] and the matrices built from it.
pub(crate) struct Rule {
    /// Nodes, ascending.
    pub x: [f64; N],
    pub w: [f64; N],
    /// `leg[k][j]` = P_k(x_j).
    leg: [[f64; N]; N],
    /// `integ[i][j]` = ∫_{−1}^{x_i} ℓ_j(t) dt for the Lagrange basis ℓ_j of the nodes: applied to
    /// node values it gives the running integral of the interpolant at the nodes.
    pub integ: [[f64; N]; N],
}

pub(crate) fn rule() -> &'static Rule {
    static RULE: OnceLock<Rule> = OnceLock::new();
    RULE.get_or_init(build_rule)
}

/// P_0(t), …, P_{M−1}(t) by the three-term recurrence.
fn legendre_all<const M: usize>(t: f64) -> [f64; M] {
    let mut p = [0.0; M];
    p[0] = 1.0;
    if M > 1 {
        p[1] = t;
    }
    for k in 1..M.saturating_sub(1) {
        let kf = k as f64;
        p[k + 1] = ((2.0 * kf + 1.0) * t * p[k] - kf * p[k - 1]) / (kf + 1.0);
    }
    p
}

/// Nodes by Newton's method on P_N, weights 2/((1 − x²) P_N'(x)²).
fn build_rule() -> Rule {
    let n = N as f64;
    let mut x = [0.0; N];
    let mut w = [0.0; N];
    for i in 0..N {
        let mut t = (std::f64::consts::PI * (i as f64 + 0.75) / (n + 0.5)).cos();
        for _ in 0..100 {
            let p = legendre_all::<{ N + 1 }>(t);
            let dp = n * (t * p[N] - p[N - 1]) / (t * t - 1.0);
            let step = p[N] / dp;
            t -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        let p = legendre_all::<{ N + 1 }>(t);
        let dp = n * (t * p[N] - p[N - 1]) / (t * t - 1.0);
        x[N - 1 - i] = t;
        w[N - 1 - i] = 2.0 / ((1.0 - t * t) * dp * dp);
    }
    let mut leg = [[0.0; N]; N];
    for (j, &xj) in x.iter().enumerate() {
        let p = legendre_all::<N>(xj);
        for k in 0..N {
            leg[k][j] = p[k];
        }
    }
    // ℓ_j(t) = Σ_k (2k+1)/2 · w_j P_k(x_j) P_k(t), and ∫_{−1}^{s} P_k = (P_{k+1}(s) − P_{k−1}(s))/(2k+1)
    // for k ≥ 1, s + 1 for k = 0.
    let mut integ = [[0.0; N]; N];
    for (i, &xi) in x.iter().enumerate() {
        let ints = legendre_integrals(xi);
        for j in 0..N {
            let mut s = 0.0;
            for k in 0..N {
                s += (2.0 * k as f64 + 1.0) / 2.0 * leg[k][j] * ints[k];
            }
            integ[i][j] = w[j] * s;
        }
    }
    Rule { x, w, leg, integ }
}

/// ∫_{−1}^{s} P_k(t) dt for k = 0..N.
fn legendre_integrals(s: f64) -> [f64; N] {
    let p = legendre_all::<{ N + 1 }>(s);
    let mut out = [0.0; N];
    out[0] = s + 1.0;
    for k in 1..N {
        out[k] = (p[k + 1] - p[k - 1]) / (2.0 * k as f64 + 1.0);
    }
    out
}

impl Rule {
    /// Legendre coefficient c_k of the interpolant through `values` at the nodes.
    fn coefficient(&self, values: &[f64; N], k: usize) -> f64 {
        let s: f64 = self
            .w
            .iter()
            .zip(values)
            .zip(&self.leg[k])
            .map(|((w, v), p)| w * v * p)
            .sum();
        (2.0 * k as f64 + 1.0) / 2.0 * s
    }

    /// ∫_{−1}^{s} of the interpolant through `values`, s ∈ [−1, 1].
    pub fn partial_integral(&self, values: &[f64; N], s: f64) -> f64 {
        let ints = legendre_integrals(s);
        (0..N).map(|k| self.coefficient(values, k) * ints[k]).sum()
    }

    /// Σ_j w_j v_j: the integral over [−1, 1].
    pub fn sum(&self, values: &[f64; N]) -> f64 {
        self.w.iter().zip(values).map(|(w, v)| w * v).sum()
    }

    /// The panel nodes mapped to [start, start + width].
    pub fn nodes_on(&self, start: f64, width: f64) -> [f64; N] {
        let mut out = [0.0; N];
        for (o, &t) in out.iter_mut().zip(&self.x) {
            *o = start + 0.5 * width * (t + 1.0);
        }
        out
    }
}

/// Samples of K functions at the nodes of one panel.
pub(crate) type Samples<const K: usize> = [[f64; N]; K];

/// Neumaier-compensated sum, so that tens of thousands of panel contributions add up without
/// losing the digits the per-panel quadrature worked for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sum {
    sum: f64,
    comp: f64,
}

impl Sum {
    pub fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.comp += (self.sum - t) + v;
        } else {
            self.comp += (v - t) + self.sum;
        }
        self.sum = t;
    }

    pub fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// Splits [a, b] into panels of width ≤ `max_width`, bisects each until all K sampled functions
/// are resolved, and hands every accepted panel, left to right, to `visit` together with its
/// samples, so the caller need not evaluate the functions again.
///
/// `sample(x)` returns the K function values at x, or an error (non-finite value, a ≤ 0).
/// `names` labels the K functions in an `Unresolved` error.
pub(crate) fn for_each_panel<const K: usize>(
    (a, b): (f64, f64),
    max_width: f64,
    names: [&str; K],
    sample: &mut dyn FnMut(f64) -> Result<[f64; K], ProblemError>,
    visit: &mut dyn FnMut(f64, f64, &Samples<K>),
) -> Result<(), ProblemError> {
    let rule = rule();
    let initial = ((b - a) / max_width).ceil();
    if !(initial.is_finite() && initial >= 1.0 && initial <= MAX_PANELS as f64) {
        return Err(ProblemError::TooManyPanels {
            field: "resolution".to_owned(),
            value: max_width,
            panels: initial,
            limit: MAX_PANELS,
        });
    }
    let initial = initial as usize;
    let mut global = [0.0f64; K];
    // Panels evaluated, accepted or not: bounds the work as well as the memory of the caller.
    let mut evaluated = 0usize;
    // (lo, hi, depth, relative tails of the parent panel)
    let mut stack: Vec<(f64, f64, u32, [f64; K])> = Vec::with_capacity(2 * MAX_DEPTH as usize);
    for p in 0..initial {
        // Endpoints from the same formula on both sides, so panels tile [a, b] exactly.
        let lo = if p == 0 {
            a
        } else {
            a + (b - a) * p as f64 / initial as f64
        };
        let hi = if p + 1 == initial {
            b
        } else {
            a + (b - a) * (p + 1) as f64 / initial as f64
        };
        stack.push((lo, hi, 0, [f64::INFINITY; K]));
        while let Some((lo, hi, depth, parent)) = stack.pop() {
            evaluated += 1;
            if evaluated > 2 * MAX_PANELS {
                return Err(ProblemError::TooManyPanels {
                    field: "resolution".to_owned(),
                    value: max_width,
                    panels: evaluated as f64,
                    limit: MAX_PANELS,
                });
            }
            let width = hi - lo;
            let mut samples = [[0.0; N]; K];
            for (j, &x) in rule.nodes_on(lo, width).iter().enumerate() {
                let v = sample(x)?;
                for k in 0..K {
                    samples[k][j] = v[k];
                }
            }
            let mut resolved = true;
            let mut rel = [0.0; K];
            for k in 0..K {
                let local = samples[k].iter().fold(0.0f64, |m, v| m.max(v.abs()));
                global[k] = global[k].max(local);
                let scale = local.max(SCALE_FLOOR * global[k]);
                let tail = rule.coefficient(&samples[k], N - 1).abs()
                    + rule.coefficient(&samples[k], N - 2).abs();
                rel[k] = if tail == 0.0 { 0.0 } else { tail / scale };
                let converged = rel[k] <= TAIL_TOL;
                let noise = rel[k] <= NOISE_TOL && rel[k] > 0.5 * parent[k];
                if !(converged || noise) {
                    resolved = false;
                    if depth >= MAX_DEPTH {
                        return Err(ProblemError::Unresolved {
                            field: names[k].to_owned(),
                            x: 0.5 * (lo + hi),
                        });
                    }
                }
            }
            if resolved {
                visit(lo, width, &samples);
            } else {
                let mid = 0.5 * (lo + hi);
                stack.push((mid, hi, depth + 1, rel));
                stack.push((lo, mid, depth + 1, rel));
            }
        }
    }
    Ok(())
}

/// ∫_a^b g by adaptive composite Gauss–Legendre.
pub(crate) fn integrate(
    domain: (f64, f64),
    max_width: f64,
    name: &str,
    g: &dyn Fn(f64) -> f64,
) -> Result<f64, ProblemError> {
    let rule = rule();
    let mut total = Sum::default();
    for_each_panel(
        domain,
        max_width,
        [name],
        &mut |x| {
            let v = g(x);
            if v.is_finite() {
                Ok([v])
            } else {
                Err(ProblemError::NonFinite {
                    field: name.to_owned(),
                    x,
                    value: v,
                })
            }
        },
        &mut |_, width, s| total.add(0.5 * width * rule.sum(&s[0])),
    )?;
    Ok(total.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_integrates_high_degree_exactly() {
        let r = rule();
        let s: f64 = (0..N).map(|j| r.w[j] * r.x[j].powi(30)).sum();
        assert!((s - 2.0 / 31.0).abs() < 1e-15, "{s}");
        let total: f64 = r.w.iter().sum();
        assert!((total - 2.0).abs() < 1e-14);
        assert!(r.x.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn integration_matrix_is_exact_for_polynomials() {
        let r = rule();
        let vals: [f64; N] = std::array::from_fn(|j| r.x[j].powi(7) - 3.0 * r.x[j]);
        for i in 0..N {
            let got: f64 = (0..N).map(|j| r.integ[i][j] * vals[j]).sum();
            let s = r.x[i];
            let want = (s.powi(8) - 1.0) / 8.0 - 1.5 * (s * s - 1.0);
            assert!((got - want).abs() < 1e-14, "{i}: {got} vs {want}");
            let got2 = r.partial_integral(&vals, s);
            assert!((got2 - want).abs() < 1e-14);
        }
    }

    #[test]
    fn adaptive_integral_of_near_singular_function() {
        // ∫_0^{2π} 1/(2.1 + 2 sin t) dt = 2π / sqrt(2.1² − 4).
        let want = 2.0 * std::f64::consts::PI / (2.1f64 * 2.1 - 4.0).sqrt();
        let got = integrate((0.0, 2.0 * std::f64::consts::PI), 10.0, "g", &|t| {
            1.0 / (2.1 + 2.0 * t.sin())
        })
        .unwrap();
        assert!((got - want).abs() < 1e-12 * want, "{got} vs {want}");
    }
}
