//! The exact solution of the 1-D Darcy problem by quadrature.
//!
//! In one dimension −(a u')' = f integrates twice: a(x/ε) u'(x) = C − F(x) with F(x) = ∫_a^x f,
//! and u(x) = u_a + ∫_a^x (C − F)/a, where C makes u(b) = u_b:
//! C = (u_b − u_a + ∫_a^b F/a) / ∫_a^b 1/a.
//! This is the ground truth every PINN of the project is measured against, so it must be far more
//! accurate than any network (1e-10 relative and better) at every ε the experiments sweep.

use crate::error::ProblemError;
use crate::quadrature::{for_each_panel, rule, Samples, Sum, N};

/// Initial panels are this many times narrower than the resolution length scale; adaptive
/// bisection takes it from there.
const PANELS_PER_SCALE: f64 = 4.0;

/// One accepted quadrature panel and the running integrals at its left end.
#[derive(Clone, Copy, Debug)]
struct Panel {
    start: f64,
    width: f64,
    /// F at `start`.
    f0: f64,
    /// ∫ 1/a over the panel.
    inv_a: f64,
    /// ∫ F/a over the panel.
    f_over_a: f64,
}

/// The exact solution of −(a(x/ε) u')' = f on (a, b), u(a) = u_a, u(b) = u_b, by quadrature:
/// u'(x) = (C − F(x))/a(x/ε), F(x) = ∫_a^x f, C chosen so that u(b) = u_b.
///
/// `coef` is a(x/ε) as a function of x; `resolution` is the smallest length scale of `coef` and
/// `forcing` (e.g. ε times the period of a). Returns (u, u') at each x (x ∈ [a, b], any order).
pub fn solve_darcy(
    domain: (f64, f64),
    coef: &dyn Fn(f64) -> f64,
    forcing: &dyn Fn(f64) -> f64,
    boundary: (f64, f64),
    resolution: f64,
    x: &[f64],
) -> Result<Vec<(f64, f64)>, ProblemError> {
    let (a, b) = domain;
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(ProblemError::InvalidDomain { a, b });
    }
    for (field, value) in [("boundary.a", boundary.0), ("boundary.b", boundary.1)] {
        if !value.is_finite() {
            return Err(ProblemError::InvalidValue {
                field: field.to_owned(),
                value,
                requirement: "finite",
            });
        }
    }
    if !(resolution.is_finite() && resolution > 0.0) {
        return Err(ProblemError::InvalidValue {
            field: "resolution".to_owned(),
            value: resolution,
            requirement: "finite and > 0",
        });
    }
    if x.is_empty() {
        return Err(ProblemError::EmptyPoints {
            field: "x".to_owned(),
        });
    }
    if let Some(&bad) = x.iter().find(|&&t| !(t >= a && t <= b)) {
        return Err(ProblemError::OutOfDomain {
            field: "x".to_owned(),
            x: bad,
            a,
            b,
        });
    }

    let rule = rule();
    let mut sample = |t: f64| sample_node(coef, forcing, t);
    let mut panels: Vec<Panel> = Vec::new();
    let mut f_total = Sum::default();
    let mut inv_a_total = Sum::default();
    let mut f_over_a_total = Sum::default();
    for_each_panel(
        domain,
        resolution / PANELS_PER_SCALE,
        ["forcing", "1/coefficient"],
        &mut sample,
        &mut |start, width, s: &Samples<2>| {
            let f0 = f_total.value();
            let big_f = running_integral(f0, width, &s[0]);
            let h = 0.5 * width;
            let inv_a = h * rule.sum(&s[1]);
            let mut fa = [0.0; N];
            for j in 0..N {
                fa[j] = big_f[j] * s[1][j];
            }
            let f_over_a = h * rule.sum(&fa);
            f_total.add(h * rule.sum(&s[0]));
            inv_a_total.add(inv_a);
            f_over_a_total.add(f_over_a);
            panels.push(Panel {
                start,
                width,
                f0,
                inv_a,
                f_over_a,
            });
        },
    )?;
    let c = (boundary.1 - boundary.0 + f_over_a_total.value()) / inv_a_total.value();

    // u at the left end of every panel.
    let mut u0 = Vec::with_capacity(panels.len());
    let mut u = Sum::default();
    u.add(boundary.0);
    for p in &panels {
        u0.push(u.value());
        u.add(c * p.inv_a - p.f_over_a);
    }

    // Output points: re-sample the panel that holds each point (cached for runs of points in
    // the same panel) and integrate its interpolants from the panel start.
    let mut out = Vec::with_capacity(x.len());
    let mut cached: Option<(usize, [f64; N], [f64; N])> = None;
    for &t in x {
        let idx = panels.partition_point(|p| p.start <= t).saturating_sub(1);
        let Some(&p) = panels.get(idx) else {
            return Err(ProblemError::Unresolved {
                field: "x".to_owned(),
                x: t,
            });
        };
        let (f_vals, du_vals) = match &cached {
            Some((i, f, du)) if *i == idx => (*f, *du),
            _ => {
                let mut f = [0.0; N];
                let mut inv_a = [0.0; N];
                for (j, &node) in rule.nodes_on(p.start, p.width).iter().enumerate() {
                    let [fv, iv] = sample_node(coef, forcing, node)?;
                    f[j] = fv;
                    inv_a[j] = iv;
                }
                let big_f = running_integral(p.f0, p.width, &f);
                let mut du = [0.0; N];
                for j in 0..N {
                    du[j] = (c - big_f[j]) * inv_a[j];
                }
                cached = Some((idx, f, du));
                (f, du)
            }
        };
        let s = (2.0 * (t - p.start) / p.width - 1.0).clamp(-1.0, 1.0);
        let h = 0.5 * p.width;
        let big_f = p.f0 + h * rule.partial_integral(&f_vals, s);
        let value = u0[idx] + h * rule.partial_integral(&du_vals, s);
        let [_, inv_a] = sample_node(coef, forcing, t)?;
        out.push((value, (c - big_f) * inv_a));
    }
    Ok(out)
}

/// (f(x), 1/a(x)) with the checks that make the quadrature meaningful.
fn sample_node(
    coef: &dyn Fn(f64) -> f64,
    forcing: &dyn Fn(f64) -> f64,
    x: f64,
) -> Result<[f64; 2], ProblemError> {
    let av = coef(x);
    if !av.is_finite() {
        return Err(ProblemError::NonFinite {
            field: "coefficient".to_owned(),
            x,
            value: av,
        });
    }
    if av <= 0.0 {
        return Err(ProblemError::NonPositiveCoefficient {
            field: "coefficient".to_owned(),
            expr: "a(x/eps)".to_owned(),
            x,
            y: f64::NAN,
            min: av,
        });
    }
    let fv = forcing(x);
    if !fv.is_finite() {
        return Err(ProblemError::NonFinite {
            field: "forcing".to_owned(),
            x,
            value: fv,
        });
    }
    Ok([fv, 1.0 / av])
}

/// F at the panel nodes, from F at the panel start and the node values of f.
fn running_integral(f0: f64, width: f64, f: &[f64; N]) -> [f64; N] {
    let rule = rule();
    let h = 0.5 * width;
    let mut out = [0.0; N];
    for (o, row) in out.iter_mut().zip(&rule.integ) {
        let s: f64 = row.iter().zip(f).map(|(m, v)| m * v).sum();
        *o = f0 + h * s;
    }
    out
}
