//! 2-D coefficients, problems, residual rows and the `[problem]` TOML table.

use std::f64::consts::PI;

use mspinn_problem::two_d::Forcing2d;
use mspinn_problem::{
    Coefficient2d, LinearResidual2d, Problem2d, Problem2dConfig, ProblemError, Rect, ScalarFn2,
};

fn unit() -> Rect {
    Rect::new([0.0, 1.0], [0.0, 1.0]).unwrap()
}

/// Hand-written closed forms for a = 2 + sin(2πy₁)cos(2πy₂), independent of exmex.
fn a_osc(y: [f64; 2]) -> f64 {
    2.0 + (2.0 * PI * y[0]).sin() * (2.0 * PI * y[1]).cos()
}
fn grad_a_osc(y: [f64; 2]) -> [f64; 2] {
    [
        2.0 * PI * (2.0 * PI * y[0]).cos() * (2.0 * PI * y[1]).cos(),
        -2.0 * PI * (2.0 * PI * y[0]).sin() * (2.0 * PI * y[1]).sin(),
    ]
}

#[test]
fn coefficient_gradient_matches_closed_form_and_finite_differences() {
    let c = Coefficient2d::oscillatory_2d().unwrap();
    assert_eq!(c.period(), [1.0, 1.0]);
    let h = 1e-6;
    for &y in &[[0.1, 0.2], [0.37, 0.91], [0.5, 0.5], [-1.3, 2.7]] {
        assert!((c.a(y) - a_osc(y)).abs() < 1e-14);
        let g = c.grad(y);
        let exact = grad_a_osc(y);
        for k in 0..2 {
            assert!(
                (g[k] - exact[k]).abs() < 1e-12,
                "{y:?} {k}: {g:?} {exact:?}"
            );
            let mut yp = y;
            let mut ym = y;
            yp[k] += h;
            ym[k] -= h;
            let fd = (c.a(yp) - c.a(ym)) / (2.0 * h);
            assert!((g[k] - fd).abs() < 1e-6, "{y:?} {k}: {} vs fd {fd}", g[k]);
        }
    }
    // An expression that uses only y2: the gradient in y1 is 0, and y2 is fed to y2.
    let c = Coefficient2d::parse("3 + sin(y2)", [1.0, 2.0 * PI]).unwrap();
    assert_eq!(c.a([5.0, 0.5]), 3.0 + 0.5f64.sin());
    assert_eq!(c.grad([5.0, 0.5]), [0.0, 0.5f64.cos()]);
}

#[test]
fn second_derivatives_match_closed_forms() {
    let u = ScalarFn2::parse_with("sin(pi*x)*exp(2*y) + x^3*y", ["x", "y"], &[], true).unwrap();
    let (x, y) = (0.3, -0.4);
    let h = u.hessian([x, y]).unwrap();
    let s = (PI * x).sin();
    let c = (PI * x).cos();
    let e = (2.0 * y).exp();
    assert!((h[0] - (-PI * PI * s * e + 6.0 * x * y)).abs() < 1e-12);
    assert!((h[1] - (2.0 * PI * c * e + 3.0 * x * x)).abs() < 1e-12);
    assert!((h[2] - 4.0 * s * e).abs() < 1e-12);
    assert!((u.laplacian([x, y]).unwrap() - (h[0] + h[2])).abs() < 1e-15);
    let g = u.grad([x, y]);
    assert!((g[0] - (PI * c * e + 3.0 * x * x * y)).abs() < 1e-12);
    assert!((g[1] - (2.0 * s * e + x.powi(3))).abs() < 1e-12);
}

#[test]
fn unknown_variables_are_refused_with_the_field() {
    let e = Coefficient2d::parse("2 + sin(y3)", [1.0, 1.0]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("coefficient:") && msg.contains("`y3`"),
        "{msg}"
    );
    let e = Coefficient2d::parse("2", [1.0, -1.0]).unwrap_err();
    assert!(e.to_string().contains("period[1]"), "{e}");
}

#[test]
fn oscillatory_preset_minimum_is_found_exactly() {
    // min of 2 + sin·cos is 1, at (3/4, 0) and (1/4, 1/2): the descent lands on it.
    let m = Coefficient2d::oscillatory_2d()
        .unwrap()
        .check_positive()
        .unwrap();
    assert!((m.value - 1.0).abs() < 1e-12, "{m:?}");
    assert!((a_osc(m.y) - 1.0).abs() < 1e-12);
}

#[test]
fn non_positive_coefficient_is_refused_at_a_point_where_it_is_not_positive() {
    let c = Coefficient2d::parse("0.5 + sin(2*pi*y1)*cos(2*pi*y2)", [1.0, 1.0]).unwrap();
    match c.check_positive().unwrap_err() {
        ProblemError::NonPositiveCoefficient2d { field, y, min, .. } => {
            assert_eq!(field, "coefficient");
            assert!(min <= 0.0);
            assert!(0.5 + (2.0 * PI * y[0]).sin() * (2.0 * PI * y[1]).cos() <= 0.0);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_dip_narrower_than_the_scan_is_found_by_descent() {
    // A Gaussian dip ~1e-3 wide, centred between scan points (spacing 1/512): the nearest scan
    // point sees a ≈ 0.5, the dip's bottom is −0.02.
    let c = Coefficient2d::parse(
        "1 - 1.02*exp(-1000000*((y1 - 0.30091)^2 + (y2 - 0.70043)^2))",
        [1.0, 1.0],
    )
    .unwrap();
    match c.check_positive().unwrap_err() {
        ProblemError::NonPositiveCoefficient2d { y, min, .. } => {
            assert!(min <= 0.0);
            assert!(
                (y[0] - 0.30091).abs() < 2e-4 && (y[1] - 0.70043).abs() < 2e-4,
                "{y:?}"
            );
        }
        other => panic!("{other}"),
    }
}

/// −∇·(a(x/ε)∇u) by central differences of u values and a at half points: independent of the
/// symbolic derivatives the manufactured forcing is built from.
fn flux_divergence(p: &Problem2d, u: &dyn Fn(f64, f64) -> f64, x: f64, y: f64, h: f64) -> f64 {
    let a = |x: f64, y: f64| a_osc([x / p.eps, y / p.eps]);
    let fx = |xm: f64| a(xm, y) * (u(xm + h / 2.0, y) - u(xm - h / 2.0, y)) / h;
    let fy = |ym: f64| a(x, ym) * (u(x, ym + h / 2.0) - u(x, ym - h / 2.0)) / h;
    -((fx(x + h / 2.0) - fx(x - h / 2.0)) / h + (fy(y + h / 2.0) - fy(y - h / 2.0)) / h)
}

#[test]
fn manufactured_forcing_equals_minus_the_flux_divergence() {
    let eps = 1.0 / 8.0;
    let coef = Coefficient2d::oscillatory_2d().unwrap();
    let p = Problem2d::manufactured(unit(), eps, coef, "exp(x)*sin(2*y) + eps*x*y").unwrap();
    p.validate().unwrap();
    assert!(matches!(p.forcing, Forcing2d::Manufactured(_)));
    let u = |x: f64, y: f64| x.exp() * (2.0 * y).sin() + eps * x * y;
    for &(x, y) in &[(0.13, 0.41), (0.5, 0.5), (0.77, 0.29), (0.9, 0.95)] {
        let f = p.forcing_at([x, y]);
        let fd = flux_divergence(&p, &u, x, y, 1e-3 * eps);
        assert!(
            (f - fd).abs() < 1e-4 * f.abs().max(1.0),
            "({x}, {y}): {f} vs {fd}"
        );
        // g = u and exact = u.
        assert!((p.boundary.eval([x, y]) - u(x, y)).abs() < 1e-14);
    }
}

#[test]
fn pde_rows_give_zero_residual_on_a_hand_derived_solution() {
    // u = sin(πx) sin(πy) with f written out by hand (a and ∇a at x/ε), so a wrong sign or a
    // missing 1/ε in the rows shows up as a residual.
    let eps = 0.1;
    let forcing = "-((2 + sin(2*pi*x/eps)*cos(2*pi*y/eps))*(-2*pi^2*sin(pi*x)*sin(pi*y)) \
                   + (1/eps)*(2*pi*cos(2*pi*x/eps)*cos(2*pi*y/eps)*pi*cos(pi*x)*sin(pi*y) \
                   - 2*pi*sin(2*pi*x/eps)*sin(2*pi*y/eps)*pi*sin(pi*x)*cos(pi*y)))";
    let cfg = Problem2dConfig {
        eps: Some(mspinn_problem::two_d::NumberExpr::Number(eps)),
        coefficient: Some("oscillatory-2d".into()),
        forcing: Some(forcing.into()),
        ..Default::default()
    };
    let p = cfg.build(None).unwrap();
    let pts: Vec<[f64; 2]> = (1..20)
        .flat_map(|i| (1..20).map(move |j| [i as f64 / 20.0, j as f64 / 20.0 + 0.013]))
        .collect();
    let rows = p.pde_rows(&pts).unwrap();
    let s = |t: f64| (PI * t).sin();
    let c = |t: f64| (PI * t).cos();
    let u: Vec<f64> = pts.iter().map(|q| s(q[0]) * s(q[1])).collect();
    let ux: Vec<f64> = pts.iter().map(|q| PI * c(q[0]) * s(q[1])).collect();
    let uy: Vec<f64> = pts.iter().map(|q| PI * s(q[0]) * c(q[1])).collect();
    let uxx: Vec<f64> = u.iter().map(|v| -PI * PI * v).collect();
    let r = rows.residual(&u, [&ux, &uy], [&uxx, &uxx]).unwrap();
    let scale = rows.rhs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 10.0, "the ε⁻¹ term should dominate: {scale}");
    let worst = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(worst < 1e-12 * scale, "{worst}");
    // The rows themselves: c_hess = −a, c_grad = −∇a/ε.
    let q = pts[7];
    let y = [q[0] / eps, q[1] / eps];
    assert!((rows.c_hess[0][7] + a_osc(y)).abs() < 1e-13);
    assert!((rows.c_grad[1][7] + grad_a_osc(y)[1] / eps).abs() < 1e-10);
    // Mismatched jets are refused.
    assert!(rows.residual(&u[1..], [&ux, &uy], [&uxx, &uxx]).is_err());
}

#[test]
fn boundary_rows_are_dirichlet_rows_on_the_boundary_only() {
    let coef = Coefficient2d::oscillatory_2d().unwrap();
    let p = Problem2d::manufactured(unit(), 0.25, coef, "1 + x + 2*y").unwrap();
    let pts = mspinn_problem::boundary_points(p.domain, 12).unwrap();
    let rows = p.boundary_rows(&pts).unwrap();
    rows.check().unwrap();
    for (i, q) in pts.iter().enumerate() {
        assert_eq!(rows.c_u[i], 1.0);
        assert_eq!(rows.c_hess[0][i], 0.0);
        assert!((rows.rhs[i] - (1.0 + q[0] + 2.0 * q[1])).abs() < 1e-14);
    }
    let all: LinearResidual2d = p.pde_rows(&[[0.5, 0.5]]).unwrap().concat(&rows);
    assert_eq!(all.len(), 13);
    let e = p.boundary_rows(&[[0.5, 0.5]]).unwrap_err();
    assert!(e.to_string().contains("off the boundary"), "{e}");
}

const TOML: &str = r#"
domain = [[0, "pi"], ["-1/2", 1]]
eps = "1/8"
coefficient = "2 + sin(2*pi*y1)*cos(2*pi*y2)"
period = [1, "1/2"]
manufactured = "sin(x)*cos(y) + eps"
"#;

#[test]
fn config_reads_a_toml_table() {
    let cfg: Problem2dConfig = toml::from_str(TOML).unwrap();
    let p = cfg.build(None).unwrap();
    assert_eq!(p.domain.x, [0.0, PI]);
    assert_eq!(p.domain.y, [-0.5, 1.0]);
    assert_eq!(p.eps, 0.125);
    assert_eq!(p.coef.period(), [1.0, 0.5]);
    let u = p.exact.as_ref().unwrap();
    assert!((u.eval([1.0, 0.5]) - (1f64.sin() * 0.5f64.cos() + 0.125)).abs() < 1e-15);
    // --eps overrides the file, and eps inside the expressions follows it.
    let p = cfg.build(Some(0.25)).unwrap();
    assert!((p.boundary.eval([0.0, 0.0]) - 0.25).abs() < 1e-15);
    // A preset and the default domain and boundary.
    let cfg: Problem2dConfig =
        toml::from_str("eps = 0.5\ncoefficient = \"oscillatory-2d\"\nforcing = \"1\"").unwrap();
    let p = cfg.build(None).unwrap();
    assert_eq!((p.domain.x, p.domain.y), ([0.0, 1.0], [0.0, 1.0]));
    assert_eq!(p.boundary.eval([0.3, 0.0]), 0.0);
    assert!(p.exact.is_none());
}

fn build_err(text: &str) -> String {
    match toml::from_str::<Problem2dConfig>(text) {
        Ok(cfg) => cfg.build(None).unwrap_err().to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_errors_name_the_field() {
    let base = "eps = 0.5\ncoefficient = \"oscillatory-2d\"\n";
    let cases: &[(&str, &str)] = &[
        ("forcng = \"1\"", "unknown field `forcng`"),
        ("forcing = \"1\"\nmanufactured = \"x\"", "problem.forcing"),
        ("", "problem.forcing"),
        ("forcing = \"x + q\"", "problem.forcing: expression `x + q`"),
        (
            "forcing = \"1\"\nboundary = \"1/(x - x)\"",
            "problem.boundary is not finite",
        ),
        ("forcing = \"1\"\nperiod = [1, 1]", "problem.period"),
        (
            "forcing = \"1\"\ndomain = [[1, 0], [0, 1]]",
            "problem.domain[0]",
        ),
        (
            "forcing = \"1\"\ndomain = [[0, \"1/x\"], [0, 1]]",
            "problem.domain[0][1]",
        ),
    ];
    for (extra, want) in cases {
        let msg = build_err(&format!("{base}{extra}"));
        assert!(msg.contains(want), "{extra:?}: {msg}");
    }
    let msg = build_err("coefficient = \"oscillatory-2d\"\nforcing = \"1\"");
    assert!(msg.contains("problem.eps"), "{msg}");
    let msg = build_err("eps = 0.5\ncoefficient = \"sin(2*pi*y1)\"\nforcing = \"1\"");
    assert!(
        msg.starts_with("problem.coefficient") && msg.contains("> 0"),
        "{msg}"
    );
    let msg = build_err("eps = -1\ncoefficient = \"oscillatory-2d\"\nforcing = \"1\"");
    assert!(msg.contains("problem.eps = -1"), "{msg}");
}
