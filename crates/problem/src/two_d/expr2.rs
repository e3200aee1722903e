//! Scalar functions of two variables given as text, with exact partial derivatives.
//!
//! The 2-D residual needs ∂₁a and ∂₂a of the coefficient (amplified by 1/ε), and a manufactured
//! solution needs ∇u and Δu; as in 1-D they come from exmex's symbolic differentiation, so no
//! finite-difference error ever enters a residual, a forcing or a reference value.

use std::fmt;

use exmex::prelude::*;

use crate::error::ProblemError;
use crate::expr::{is_identifier, substitute, MAX_EXPR_LEN, PARSER_STACK};

/// One compiled expression, or an identically zero one (exmex refuses to differentiate with
/// respect to a variable the expression does not contain, so those derivatives are `Zero`).
#[derive(Clone)]
enum Node {
    Zero,
    Const(f64),
    Expr {
        /// Boxed for the same reason as in [`crate::ScalarFn`]: an inline `FlatEx` is ~20 KB.
        ex: Box<FlatEx<f64>>,
        /// `map[k]` is the input (0 or 1) that feeds the expression's k-th variable: exmex
        /// orders variables alphabetically and lists only those that occur.
        map: [usize; 2],
        used: usize,
    },
}

impl Node {
    fn eval(&self, p: [f64; 2]) -> f64 {
        match self {
            Node::Zero => 0.0,
            Node::Const(c) => *c,
            Node::Expr { ex, map, used } => {
                let args = [p[map[0]], p[map[1]]];
                ex.eval_relaxed(&args[..*used]).unwrap_or(f64::NAN)
            }
        }
    }
}

/// A scalar function f(v₁, v₂) with its gradient and, on request, its second derivatives.
///
/// `pi` is π, and named constants (such as `eps`) can be bound at parse time, as for
/// [`crate::ScalarFn`].
#[derive(Clone)]
pub struct ScalarFn2 {
    source: String,
    vars: [String; 2],
    value: Node,
    grad: [Node; 2],
    /// ∂₁₁, ∂₁₂, ∂₂₂ when parsed with `second = true`.
    hess: Option<[Node; 3]>,
}

impl fmt::Debug for ScalarFn2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScalarFn2")
            .field("source", &self.source)
            .field("vars", &self.vars)
            .field("second_derivatives", &self.hess.is_some())
            .finish()
    }
}

impl ScalarFn2 {
    /// Parses `expr` as a function of the two variables `vars` (e.g. `["x", "y"]`), after
    /// replacing each whole identifier named in `constants` by its value. With `second`, the
    /// three second derivatives are derived as well (a manufactured solution needs Δu).
    ///
    /// Errors name the generic field `expression`; callers re-label them with
    /// [`ProblemError::in_field`].
    pub fn parse_with(
        expr: &str,
        vars: [&str; 2],
        constants: &[(&str, f64)],
        second: bool,
    ) -> Result<ScalarFn2, ProblemError> {
        let fail = |reason: String| ProblemError::Expression {
            field: "expression".to_owned(),
            expr: expr.to_owned(),
            reason,
        };
        if !(is_identifier(vars[0]) && is_identifier(vars[1])) || vars[0] == vars[1] {
            return Err(fail(format!(
                "the variable names `{}`, `{}` must be two different identifiers",
                vars[0], vars[1]
            )));
        }
        let text = crate::expr::prepare_source(expr, &vars, constants, &fail)?;
        let names = [vars[0].to_owned(), vars[1].to_owned()];
        let worker_names = names.clone();
        // exmex differentiates recursively: a large stack, and a panic becomes an error.
        let worker = std::thread::Builder::new()
            .name("mspinn-expr2".to_owned())
            .stack_size(PARSER_STACK)
            .spawn(move || compile(&text, &worker_names, second))
            .map_err(|e| fail(format!("could not start the parser thread: {e}")))?;
        let (value, grad, hess) = worker
            .join()
            .unwrap_or_else(|_| Err("the expression parser panicked".to_owned()))
            .map_err(fail)?;
        Ok(ScalarFn2 {
            source: expr.to_owned(),
            vars: names,
            value,
            grad,
            hess,
        })
    }

    /// A constant function; cannot fail (the default boundary data g ≡ 0).
    pub fn constant(c: f64, vars: [&str; 2]) -> ScalarFn2 {
        ScalarFn2 {
            source: format!("{c}"),
            vars: [vars[0].to_owned(), vars[1].to_owned()],
            value: Node::Const(c),
            grad: [Node::Zero, Node::Zero],
            hess: Some([Node::Zero, Node::Zero, Node::Zero]),
        }
    }

    /// The expression as written (before constants were substituted).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// f(p). An exmex evaluation error shows up as NaN, which every consumer checks for.
    pub fn eval(&self, p: [f64; 2]) -> f64 {
        self.value.eval(p)
    }

    /// (∂₁f, ∂₂f)(p), symbolic.
    pub fn grad(&self, p: [f64; 2]) -> [f64; 2] {
        [self.grad[0].eval(p), self.grad[1].eval(p)]
    }

    /// (∂₁₁f, ∂₁₂f, ∂₂₂f)(p), symbolic; `None` unless parsed with `second = true`.
    pub fn hessian(&self, p: [f64; 2]) -> Option<[f64; 3]> {
        self.hess
            .as_ref()
            .map(|h| [h[0].eval(p), h[1].eval(p), h[2].eval(p)])
    }

    /// Δf(p) = ∂₁₁f + ∂₂₂f; `None` unless parsed with `second = true`.
    pub fn laplacian(&self, p: [f64; 2]) -> Option<f64> {
        self.hessian(p).map(|h| h[0] + h[2])
    }
}

type Compiled = (Node, [Node; 2], Option<[Node; 3]>);

fn compile(text: &str, vars: &[String; 2], second: bool) -> Result<Compiled, String> {
    let ex = FlatEx::<f64>::parse(text).map_err(|e| e.to_string())?;
    let value = node(ex.clone(), vars)?;
    let d1 = partial(&ex, &vars[0])?;
    let d2 = partial(&ex, &vars[1])?;
    let hess = if second {
        let second_of = |d: &Option<FlatEx<f64>>, var: &str| match d {
            None => Ok(Node::Zero),
            Some(d) => partial(d, var).and_then(|dd| match dd {
                Some(dd) => node(dd, vars),
                None => Ok(Node::Zero),
            }),
        };
        Some([
            second_of(&d1, &vars[0])?,
            second_of(&d1, &vars[1])?,
            second_of(&d2, &vars[1])?,
        ])
    } else {
        None
    };
    let first = |d: Option<FlatEx<f64>>| match d {
        Some(d) => node(d, vars),
        None => Ok(Node::Zero),
    };
    Ok((value, [first(d1)?, first(d2)?], hess))
}

/// ∂f/∂var, or `None` when f does not contain `var` (the derivative is identically zero).
fn partial(ex: &FlatEx<f64>, var: &str) -> Result<Option<FlatEx<f64>>, String> {
    match ex.var_names().iter().position(|n| n == var) {
        None => Ok(None),
        Some(i) => ex
            .clone()
            .partial(i)
            .map(Some)
            .map_err(|e| format!("cannot differentiate it: {e}")),
    }
}

fn node(ex: FlatEx<f64>, vars: &[String; 2]) -> Result<Node, String> {
    let mut map = [0usize; 2];
    let names = ex.var_names();
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !vars.contains(n))
        .map(|n| format!("`{n}`"))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown variable(s) {}; the only variables allowed here are `{}` and `{}`",
            unknown.join(", "),
            vars[0],
            vars[1]
        ));
    }
    for (k, name) in names.iter().enumerate() {
        map[k] = usize::from(*name == vars[1]);
    }
    let used = names.len();
    Ok(Node::Expr {
        ex: Box::new(ex),
        map,
        used,
    })
}

/// A number written as a TOML number or as a constant expression ("1/32", "2*pi"); the
/// field is named in the error.
pub(crate) fn parse_constant(text: &str, field: &str) -> Result<f64, ProblemError> {
    let fail = |reason: String| ProblemError::Expression {
        field: field.to_owned(),
        expr: text.to_owned(),
        reason,
    };
    if text.chars().count() > MAX_EXPR_LEN {
        return Err(fail("it is too long for a number".to_owned()));
    }
    let subst = substitute(text, &[("pi", "PI".to_owned())]);
    let ex = FlatEx::<f64>::parse(&subst).map_err(|e| fail(e.to_string()))?;
    if !ex.var_names().is_empty() {
        return Err(fail(format!(
            "a number is expected here, but it has the variable(s) {}",
            ex.var_names().join(", ")
        )));
    }
    let v = ex.eval(&[]).map_err(|e| fail(e.to_string()))?;
    if !v.is_finite() {
        return Err(ProblemError::InvalidValue {
            field: field.to_owned(),
            value: v,
            requirement: "finite",
        });
    }
    Ok(v)
}
