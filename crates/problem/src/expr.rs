//! Scalar functions of one variable given as text, with exact derivatives.
//!
//! The PINN residual of a Darcy problem needs a'(y), and the tests compare against u'(x); both
//! come from exmex's symbolic differentiation so that no finite-difference error (which would be
//! amplified by 1/ε) ever enters a residual or a reference value.

use std::fmt;

use exmex::prelude::*;

use crate::error::ProblemError;

/// A scalar function of one variable with its first derivative; built from an exmex expression.
///
/// `pi` is accepted besides exmex's own `PI`/`π`, and named constants (such as `eps`) can be bound
/// with [`ScalarFn::parse_with`], so config files and presets read like the paper.
#[derive(Clone)]
pub struct ScalarFn {
    source: String,
    constants: Vec<(String, f64)>,
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Constant(f64),
    /// Boxed: exmex keeps up to 32 nodes inline, which makes a `FlatEx<f64>` ~20 KB; unboxed,
    /// a `Problem` would be >100 KB and overflow small thread stacks when moved.
    Expr {
        value: Box<FlatEx<f64>>,
        /// `None` when the expression does not contain the variable (derivative ≡ 0); exmex
        /// refuses to differentiate with respect to a variable it has not seen.
        deriv: Option<Box<FlatEx<f64>>>,
    },
}

impl fmt::Debug for ScalarFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("ScalarFn");
        s.field("source", &self.source);
        if !self.constants.is_empty() {
            s.field("constants", &self.constants);
        }
        s.finish()
    }
}

const GENERIC_FIELD: &str = "expression";

impl ScalarFn {
    /// Parses `expr` as a function of the single variable `var` (`pi` is π).
    pub fn parse(expr: &str, var: &str) -> Result<ScalarFn, ProblemError> {
        ScalarFn::parse_with(expr, var, &[])
    }

    /// Like [`ScalarFn::parse`], but first replaces each whole identifier named in `constants`
    /// by its value, so that `eps` can appear in presets and user configs.
    pub fn parse_with(
        expr: &str,
        var: &str,
        constants: &[(&str, f64)],
    ) -> Result<ScalarFn, ProblemError> {
        let fail = |reason: String| ProblemError::Expression {
            field: GENERIC_FIELD.to_owned(),
            expr: expr.to_owned(),
            reason,
        };
        if !is_identifier(var) {
            return Err(fail(format!(
                "the variable name `{var}` is not an identifier"
            )));
        }
        let text = prepare_source(expr, &[var], constants, &fail)?;
        let (value, deriv) = parse_and_differentiate(text, var.to_owned()).map_err(fail)?;
        Ok(ScalarFn {
            source: expr.to_owned(),
            constants: constants.iter().map(|&(n, v)| (n.to_owned(), v)).collect(),
            repr: Repr::Expr { value, deriv },
        })
    }

    /// A constant function; cannot fail, so it is the safe default for "no forcing".
    pub fn constant(c: f64) -> ScalarFn {
        ScalarFn {
            source: format!("{c}"),
            constants: Vec::new(),
            repr: Repr::Constant(c),
        }
    }

    /// f(t). An evaluation error inside exmex (impossible for a parsed one-variable expression)
    /// shows up as NaN, which every consumer checks for, rather than as a panic.
    pub fn eval(&self, t: f64) -> f64 {
        match &self.repr {
            Repr::Constant(c) => *c,
            Repr::Expr { value, .. } => value.eval_relaxed(&[t]).unwrap_or(f64::NAN),
        }
    }

    /// f'(t), from the symbolic derivative.
    pub fn deriv(&self, t: f64) -> f64 {
        match &self.repr {
            Repr::Constant(_) | Repr::Expr { deriv: None, .. } => 0.0,
            Repr::Expr {
                deriv: Some(deriv), ..
            } => deriv.eval_relaxed(&[t]).unwrap_or(f64::NAN),
        }
    }

    /// The expression as written (before constants were substituted).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The named constants bound by [`ScalarFn::parse_with`], for provenance in run folders.
    pub fn constants(&self) -> &[(String, f64)] {
        &self.constants
    }
}

/// Stack for the parser thread. exmex differentiates recursively and needs 2–4 MiB for an
/// expression the size of the appendix C forcing, more than a default spawned thread (2 MiB)
/// has; a stack overflow would abort the whole process. The memory is only reserved, not
/// touched, unless an expression needs it.
pub(crate) const PARSER_STACK: usize = 64 << 20;

/// Longest accepted expression (in characters, before substitution). exmex's differentiation
/// grows super-linearly (a pathological 1000-character product of powers takes ~50 s, within
/// `PARSER_STACK`); realistic coefficients and forcings are a few hundred characters.
pub(crate) const MAX_EXPR_LEN: usize = 1000;

type Parsed = (Box<FlatEx<f64>>, Option<Box<FlatEx<f64>>>);

/// Parses `text` and differentiates it with respect to `var` on a thread with a large stack; an
/// exmex panic becomes an error instead of unwinding into the caller.
fn parse_and_differentiate(text: String, var: String) -> Result<Parsed, String> {
    let worker = std::thread::Builder::new()
        .name("mspinn-expr".to_owned())
        .stack_size(PARSER_STACK)
        .spawn(move || parse_on_this_thread(&text, &var))
        .map_err(|e| format!("could not start the parser thread: {e}"))?;
    worker
        .join()
        .unwrap_or_else(|_| Err("the expression parser panicked".to_owned()))
}

fn parse_on_this_thread(text: &str, var: &str) -> Result<Parsed, String> {
    let value = Box::new(FlatEx::<f64>::parse(text).map_err(|e| e.to_string())?);
    let deriv = match value.var_names() {
        [] => None,
        [name] if name == var => Some(Box::new(
            (*value)
                .clone()
                .partial(0)
                .map_err(|e| format!("cannot differentiate it: {e}"))?,
        )),
        names => {
            let unknown: Vec<String> = names
                .iter()
                .filter(|n| *n != var)
                .map(|n| format!("`{n}`"))
                .collect();
            return Err(format!(
                "unknown variable(s) {}; the only variable allowed here is `{var}`",
                unknown.join(", ")
            ));
        }
    };
    Ok((value, deriv))
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Replaces whole identifiers by their replacement text. Values are written as parenthesised
/// `Display` output, which never uses exponent notation and round-trips exactly; that matters
/// because exmex's number literals have no exponent syntax.
pub(crate) fn substitute(expr: &str, constants: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(expr.len() + 16);
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '{' {
            // exmex's quoted variable names are copied verbatim.
            out.push(c);
            for (_, d) in chars.by_ref() {
                out.push(d);
                if d == '}' {
                    break;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = i + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let ident = &expr[start..end];
            match constants.iter().find(|(n, _)| *n == ident) {
                Some((_, text)) => out.push_str(text),
                None => out.push_str(ident),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_respects_identifier_boundaries() {
        let consts = [("eps", "(0.5)".to_owned()), ("pi", "PI".to_owned())];
        let s = substitute("eps*sin(x/eps) + epsilon + exp(pi) + {eps}", &consts);
        assert_eq!(s, "(0.5)*sin(x/(0.5)) + epsilon + exp(PI) + {eps}");
    }

    #[test]
    fn substituted_values_round_trip_exactly() {
        let eps = 1.0 / 3.0;
        let f = ScalarFn::parse_with("eps", "x", &[("eps", eps)]).unwrap();
        assert_eq!(f.eval(0.0), eps);
        let tiny = 1.234_567_890_123_4e-7;
        let f = ScalarFn::parse_with("-eps", "x", &[("eps", tiny)]).unwrap();
        assert_eq!(f.eval(0.0), -tiny);
    }
}

/// What every expression passes before exmex sees it, in 1-D and 2-D alike: constant names are
/// identifiers other than the variables, their values finite; the text is not empty, within
/// [`MAX_EXPR_LEN`] and free of an ambiguous unary-minus power ([`check_unary_minus_power`]).
/// Returns the text with each constant (and `pi`, unless it is a variable or a constant)
/// substituted by its value. `fail` makes the error of the caller's field.
pub(crate) fn prepare_source(
    expr: &str,
    vars: &[&str],
    constants: &[(&str, f64)],
    fail: &dyn Fn(String) -> ProblemError,
) -> Result<String, ProblemError> {
    for &(name, value) in constants {
        if !is_identifier(name) {
            return Err(fail(format!(
                "the constant name `{name}` is not an identifier"
            )));
        }
        if vars.contains(&name) {
            return Err(fail(format!(
                "`{name}` cannot be both a variable and a constant"
            )));
        }
        if !value.is_finite() {
            return Err(ProblemError::InvalidValue {
                field: name.to_owned(),
                value,
                requirement: "finite",
            });
        }
    }
    if expr.trim().is_empty() {
        return Err(fail("it is empty".to_owned()));
    }
    let len = expr.chars().count();
    if len > MAX_EXPR_LEN {
        return Err(fail(format!(
            "it is {len} characters long; the limit is {MAX_EXPR_LEN}"
        )));
    }
    check_unary_minus_power(expr).map_err(fail)?;
    let mut all: Vec<(&str, String)> = constants
        .iter()
        .map(|&(n, v)| (n, format!("({v})")))
        .collect();
    if !all.iter().any(|(n, _)| *n == "pi") && !vars.contains(&"pi") {
        all.push(("pi", "PI".to_owned()));
    }
    Ok(substitute(expr, &all))
}

/// Refuses a unary minus whose operand is raised to a power, naming the fix: exmex binds unary
/// minus tighter than `^`, so it reads `-x^2` as (−x)² = x² and `exp(-x^2)` as exp(x²), the
/// opposite of the mathematical convention every user writes in. `-(x^2)` and `(-x)^2` say
/// which one is meant; `2^-x` (a minus after `^`, whose operand is not raised) is fine.
pub(crate) fn check_unary_minus_power(expr: &str) -> Result<(), String> {
    let c: Vec<char> = expr.chars().collect();
    let skip_ws = |mut j: usize| {
        while j < c.len() && c[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // The index just past a balanced group opening at `j`, if it closes.
    let group_end = |j: usize| -> Option<usize> {
        let mut depth = 0usize;
        for (k, &ch) in c.iter().enumerate().skip(j) {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(k + 1);
                    }
                }
                _ => {}
            }
        }
        None
    };
    // The index just past the operand starting at `j`: a number, an identifier (with its call
    // parentheses) or a parenthesised group.
    let operand_end = |j: usize| -> Option<usize> {
        let first = *c.get(j)?;
        if first == '(' {
            return group_end(j);
        }
        if first.is_ascii_digit() || first == '.' {
            let mut k = j;
            while k < c.len() && (c[k].is_ascii_digit() || c[k] == '.') {
                k += 1;
            }
            if k < c.len() && (c[k] == 'e' || c[k] == 'E') {
                let mut e = k + 1;
                if e < c.len() && (c[e] == '+' || c[e] == '-') {
                    e += 1;
                }
                if e < c.len() && c[e].is_ascii_digit() {
                    k = e;
                    while k < c.len() && c[k].is_ascii_digit() {
                        k += 1;
                    }
                }
            }
            return Some(k);
        }
        if first.is_alphabetic() || first == '_' {
            let mut k = j;
            while k < c.len() && (c[k].is_alphanumeric() || c[k] == '_') {
                k += 1;
            }
            let after = skip_ws(k);
            if c.get(after) == Some(&'(') {
                return group_end(after);
            }
            return Some(k);
        }
        None
    };
    let mut prev: Option<char> = None;
    for (i, &ch) in c.iter().enumerate() {
        let unary = matches!(prev, None | Some('(' | ',' | '+' | '-' | '*' | '/' | '^'));
        if ch == '-' && unary {
            if let Some(end) = operand_end(skip_ws(i + 1)) {
                if c.get(skip_ws(end)) == Some(&'^') {
                    let written: String = c[i..end].iter().collect();
                    let operand: String = c[skip_ws(i + 1)..end].iter().collect();
                    return Err(format!(
                        "`{written}^…` is ambiguous here: the parser would raise `-{operand}` to \
                         the power (so -x^2 = x²); write `-({operand}^…)` for the negated power \
                         or `(-{operand})^…` for the power of the negative"
                    ));
                }
            }
        }
        if !ch.is_whitespace() {
            prev = Some(ch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod unary_minus_tests {
    use super::*;

    #[test]
    fn a_unary_minus_before_a_power_is_refused_and_the_rest_parse() {
        for bad in [
            "-x^2",
            "exp(-x^2)",
            "1 + -x^2",
            "2*(-sin(x)^2)",
            "- 3.5e-1^x",
            "f(x, -(x)^2)",
            "2^-x^2",
        ] {
            let e = check_unary_minus_power(bad).expect_err(bad);
            assert!(e.contains("ambiguous"), "{bad}: {e}");
        }
        for good in [
            "-(x^2)",
            "(-x)^2",
            "exp(-(x^2))",
            "x - x^2",
            "2^-x",
            "-x*y",
            "a-b^2",
            "-3*x^2",
            "1e-3^2",
            "sin(x)-cos(x)^2",
        ] {
            assert_eq!(check_unary_minus_power(good), Ok(()), "{good}");
        }
        // The refusal reaches users with the expression named, and the rewritten form parses to
        // the mathematical value.
        assert!(ScalarFn::parse("exp(-x^2)", "x").is_err());
        let f = ScalarFn::parse("exp(-(x^2))", "x").unwrap();
        assert!((f.eval(1.5) - (-2.25f64).exp()).abs() < 1e-15);
    }
}
