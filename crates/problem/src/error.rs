//! The one error type of the crate.
//!
//! Every variant carries the name of the offending field (as a user would write it in a config
//! file) and the offending value, so a message is actionable without a backtrace.

use thiserror::Error;

/// Everything that can be wrong with a problem definition or a request made of it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProblemError {
    /// An expression did not parse, used a variable other than the allowed one, or could not be
    /// differentiated symbolically.
    #[error("{field}: expression `{expr}` is invalid: {reason}")]
    Expression {
        field: String,
        expr: String,
        reason: String,
    },

    /// A scalar parameter is out of its admissible range.
    #[error("{field} = {value} is invalid: it must be {requirement}")]
    InvalidValue {
        field: String,
        value: f64,
        requirement: &'static str,
    },

    /// The interval (a, b) is empty, inverted or not finite.
    #[error("domain = ({a}, {b}) is invalid: it must be finite with a < b")]
    InvalidDomain { a: f64, b: f64 },

    /// The coefficient a(x/ε) is not strictly positive on the domain, so the operator is not
    /// elliptic there.
    ///
    /// `y` is the fast variable x/ε where a(y) = `min`, and `x` the point of the domain; either
    /// is NaN where the caller does not know it (the reference solver sees a(x/ε) only as a
    /// function of x, the harmonic mean only a(y) over one period).
    #[error(
        "{field}: a(x/eps) = `{expr}` must be > 0 on the domain, \
         but its minimum is a(y) = {min} at {}",
        location(*.x, *.y)
    )]
    NonPositiveCoefficient {
        field: String,
        expr: String,
        x: f64,
        y: f64,
        min: f64,
    },

    /// The coefficient has a feature that neither the positivity check nor the reference
    /// quadrature can resolve (a kink or a spike narrower than the finest quadrature panel), so
    /// neither a > 0 nor the reference solution can be trusted.
    #[error(
        "{field}: a(y) = `{expr}` cannot be resolved near y = {y}: {reason}; \
         smooth it or widen the feature"
    )]
    UnresolvableCoefficient {
        field: String,
        expr: String,
        y: f64,
        reason: String,
    },

    /// The period of the coefficient (in y) is zero, negative or not finite.
    #[error(
        "{field} = {value} is invalid: the period of the coefficient in y must be finite and > 0"
    )]
    InvalidPeriod { field: String, value: f64 },

    /// A function (or an input coordinate) is infinite or NaN at some point.
    #[error("{field} is not finite at x = {x} (value {value})")]
    NonFinite { field: String, x: f64, value: f64 },

    /// A point set with no points was requested or supplied.
    #[error("{field}: the point set is empty")]
    EmptyPoints { field: String },

    /// A point set too small for its kind (e.g. one point cannot contain both endpoints).
    #[error("{field}: {n} points requested, but this kind needs at least {min}")]
    TooFewPoints { field: String, n: usize, min: usize },

    /// A point lies outside the closed domain where the requested quantity is defined.
    #[error("{field}: x = {x} lies outside the domain [{a}, {b}]")]
    OutOfDomain {
        field: String,
        x: f64,
        a: f64,
        b: f64,
    },

    /// A field that this operator kind needs was not given.
    #[error("{field} is required for a {kind} problem but is missing")]
    MissingField { field: String, kind: String },

    /// A required field of a problem description was not given.
    #[error("{field} is required: {hint}")]
    Required { field: String, hint: String },

    /// A value this request cannot take (e.g. an operator the NTK does not apply to).
    #[error("{field} = {value}: {reason}")]
    Unsupported {
        field: String,
        value: String,
        reason: String,
    },

    /// A number written as text ("1/32", "pi") did not parse.
    #[error("{field} = {text:?} is not a number: {reason}")]
    Number {
        field: String,
        text: String,
        reason: String,
    },

    /// A problem preset name is not known.
    #[error("problem = `{name}` is not a known preset; known presets: {known}")]
    UnknownPreset { name: String, known: String },

    /// An ε was given to a preset whose data do not depend on ε.
    #[error("eps = {eps} was given, but the preset `{name}` has no eps parameter")]
    PresetHasNoEps { name: String, eps: f64 },

    /// A collocation kind name is not known.
    #[error("points.kind = `{kind}` is not known; known kinds: endpoints, midpoints, random")]
    UnknownPointKind { kind: String },

    /// A name that should identify an operator kind is not known.
    #[error("kind = `{kind}` is not known; known kinds: darcy, poisson, regression")]
    UnknownOperatorKind { kind: String },

    /// No reference solution is available (a regression target without a closed form).
    #[error("problem `{name}` ({kind}) has no exact solution and no solver applies to it")]
    NoReference { name: String, kind: String },

    /// The requested resolution would need more quadrature panels than the solver allows.
    #[error(
        "{field} = {value} asks for {panels} quadrature panels, more than the limit {limit}; \
         the length scale is too small for the domain"
    )]
    TooManyPanels {
        field: String,
        value: f64,
        panels: f64,
        limit: usize,
    },

    /// Two arrays that must have one entry per row disagree in length.
    #[error("{field} has {got} entries, but there are {expected} rows")]
    LengthMismatch {
        field: String,
        expected: usize,
        got: usize,
    },

    /// Adaptive quadrature could not resolve a function near x (a singularity or a kink).
    #[error("{field} could not be resolved by quadrature near x = {x} (singular or not smooth?)")]
    Unresolved { field: String, x: f64 },

    /// A 2-D coefficient a(y1, y2) is not strictly positive over its period cell, so the
    /// operator is not elliptic there; `y` is the point of the cell where a = `min`.
    #[error(
        "{field}: a(y1, y2) = `{expr}` must be > 0 everywhere, \
         but a = {min} at (y1, y2) = ({}, {})",
        y[0], y[1]
    )]
    NonPositiveCoefficient2d {
        field: String,
        expr: String,
        y: [f64; 2],
        min: f64,
    },

    /// A 2-D function (or input point) is infinite or NaN at `point`.
    #[error("{field} is not finite at ({}, {}) (value {value})", point[0], point[1])]
    NonFinite2d {
        field: String,
        point: [f64; 2],
        value: f64,
    },

    /// One side of a rectangle is empty, inverted or not finite.
    #[error("{field} = [{lo}, {hi}] is invalid: it must be finite and increasing")]
    InvalidInterval { field: String, lo: f64, hi: f64 },

    /// A 2-D point lies outside the closed rectangle where the requested quantity is defined.
    #[error(
        "{field}: ({}, {}) lies outside the domain [{}, {}] x [{}, {}]",
        point[0], point[1], x[0], x[1], y[0], y[1]
    )]
    OutOfRectangle {
        field: String,
        point: [f64; 2],
        x: [f64; 2],
        y: [f64; 2],
    },

    /// A tensor grid of midpoints needs n² points.
    #[error(
        "{field} = {n} is not a perfect square: 2-D midpoints form an n x n grid, \
         so use e.g. {below} or {above}"
    )]
    NotASquare {
        field: String,
        n: usize,
        below: usize,
        above: usize,
    },

    /// A name (preset, point kind) that is not one of the known ones.
    #[error("{field} = `{name}` is not known; known: {known}")]
    UnknownName {
        field: String,
        name: String,
        known: String,
    },

    /// Two fields were given that exclude each other.
    #[error("{field} and {other} exclude each other: {reason}")]
    ConflictingFields {
        field: String,
        other: String,
        reason: &'static str,
    },

    /// A finite-volume grid larger than the solver allows (memory of the sparse Cholesky
    /// factor grows faster than the number of unknowns).
    #[error(
        "{field}: the grid would have {unknowns} unknowns, more than the limit {limit}; \
         {hint}"
    )]
    GridTooLarge {
        field: String,
        unknowns: f64,
        limit: usize,
        hint: &'static str,
    },

    /// The sparse linear solver failed (the matrix was not positive definite, or memory).
    #[error("{field}: the sparse solver failed: {reason}")]
    Solver { field: String, reason: String },

    /// A conductivity tensor that is not symmetric positive definite (or not finite), so
    /// −∇·(A∇u) = f is not elliptic.
    #[error("homogenized tensor [[{a11}, {a12}], [{a12}, {a22}]] is invalid: {reason}")]
    InvalidTensor {
        a11: f64,
        a12: f64,
        a22: f64,
        reason: &'static str,
    },
}

impl ProblemError {
    /// Re-labels the field of an error, so that a helper which only knows a generic name
    /// ("expression") can be reported as the config key the user actually wrote.
    pub fn in_field(self, name: &str) -> Self {
        match self {
            ProblemError::Expression { expr, reason, .. } => ProblemError::Expression {
                field: name.to_owned(),
                expr,
                reason,
            },
            ProblemError::InvalidValue {
                value, requirement, ..
            } => ProblemError::InvalidValue {
                field: name.to_owned(),
                value,
                requirement,
            },
            ProblemError::NonFinite { x, value, .. } => ProblemError::NonFinite {
                field: name.to_owned(),
                x,
                value,
            },
            ProblemError::Number { text, reason, .. } => ProblemError::Number {
                field: name.to_owned(),
                text,
                reason,
            },
            ProblemError::EmptyPoints { .. } => ProblemError::EmptyPoints {
                field: name.to_owned(),
            },
            ProblemError::TooFewPoints { n, min, .. } => ProblemError::TooFewPoints {
                field: name.to_owned(),
                n,
                min,
            },
            ProblemError::OutOfDomain { x, a, b, .. } => ProblemError::OutOfDomain {
                field: name.to_owned(),
                x,
                a,
                b,
            },
            // The period is a sibling of the coefficient in a config file (`problem.period`
            // beside `problem.coefficient`), so an error about it keeps naming the period.
            ProblemError::InvalidPeriod { value, .. } => ProblemError::InvalidPeriod {
                field: match name.rsplit_once('.') {
                    Some((parent, _)) => format!("{parent}.period"),
                    None => "period".to_owned(),
                },
                value,
            },
            ProblemError::NonFinite2d { point, value, .. } => ProblemError::NonFinite2d {
                field: name.to_owned(),
                point,
                value,
            },
            ProblemError::NotASquare {
                n, below, above, ..
            } => ProblemError::NotASquare {
                field: name.to_owned(),
                n,
                below,
                above,
            },
            other => other,
        }
    }
}

/// "y = …, x = …", leaving out whichever is unknown (NaN).
fn location(x: f64, y: f64) -> String {
    match (y.is_nan(), x.is_nan()) {
        (false, false) => format!("y = {y} (x = {x})"),
        (false, true) => format!("y = {y}"),
        (true, _) => format!("x = {x}"),
    }
}
