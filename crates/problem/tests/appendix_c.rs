//! The appendix C forcing is −(a u')' of eq. (25) with a = paper-4.2.

mod common;

use common::{darcy_forcing, grid, max_abs};
use mspinn_problem::{OperatorKind, Problem, ScalarFn, APPENDIX_C_FORCING};

#[test]
fn appendix_c_forcing_equals_minus_div_a_grad_u() {
    for eps in [1.0 / 32.0, 1.0 / 80.0] {
        let p = Problem::preset("twoscale-darcy", Some(eps)).unwrap();
        assert_eq!(p.kind, OperatorKind::Darcy);
        // As printed in the paper, and as used by the preset (h factored).
        let printed = ScalarFn::parse_with(APPENDIX_C_FORCING, "x", &[("eps", eps)]).unwrap();
        let x = grid(1000);
        let want: Vec<f64> = x.iter().map(|&t| darcy_forcing(t, eps)).collect();
        let scale = max_abs(want.iter().copied());
        for (label, f) in [("printed", &printed), ("preset", &p.forcing)] {
            let err = max_abs(x.iter().zip(&want).map(|(&t, w)| f.eval(t) - w));
            assert!(
                err <= 1e-10 * scale,
                "{label}, eps = {eps}: max |f_C − f| = {err:e}, max |f| = {scale:e}"
            );
        }
    }
}

#[test]
fn pde_rows_vanish_on_the_exact_solution() {
    // r = c2 u'' + c1 u' + c0 u − g with the hand-derived u, u', u'': checks the sign and the
    // 1/ε of c1 as much as the forcing.
    for name in ["twoscale-darcy", "twoscale-poisson", "twoscale-regression"] {
        let eps = 1.0 / 32.0;
        let p = Problem::preset(name, Some(eps)).unwrap();
        let x = grid(777);
        let rows = p.pde_rows(&x).unwrap();
        let u: Vec<f64> = x.iter().map(|&t| common::u(t, eps)).collect();
        let du: Vec<f64> = x.iter().map(|&t| common::du(t, eps)).collect();
        let d2u: Vec<f64> = x.iter().map(|&t| common::d2u(t, eps)).collect();
        let r = rows.residual(&u, &du, &d2u).unwrap();
        let scale = max_abs(rows.g.iter().copied());
        assert!(max_abs(r) <= 1e-11 * scale, "{name}");
        let b = p.boundary_rows();
        if p.kind == OperatorKind::Regression {
            assert!(b.is_empty());
        } else {
            assert_eq!(b.x, vec![p.domain.0, p.domain.1]);
            assert_eq!(b.c0, vec![1.0, 1.0]);
            assert_eq!(b.g, vec![0.0, 0.0]);
        }
    }
}
