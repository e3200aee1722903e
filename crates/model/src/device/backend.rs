//! The small interface the device engine's step is written against: buffers, one gemm with
//! cuBLAS's argument convention (column-major, transposes, leading dimensions, offsets), and the
//! named elementwise kernels of `kernels/src/jets_common.cuh` and `residual.cu`.
//!
//! Two implementations: a CUDA backend makes the real calls (cuBLAS, grid-stride launches of the
//! PTX), and [`super::HostBackend`] runs the same sequence on the host with a reference gemm and
//! the host-compiled `__host__ __device__` functions. CI runs the whole step through the host one,
//! every transpose and offset included; only the thin CUDA calls wait for a GPU.

use crate::{Real, Result};

/// A buffer of the backend (an index into its arena).
pub type BufId = usize;

/// A position in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub buf: BufId,
    pub offset: usize,
}

impl At {
    pub fn new(buf: BufId, offset: usize) -> Self {
        Self { buf, offset }
    }
    /// The same buffer `k` elements further on.
    pub fn plus(self, k: usize) -> Self {
        Self {
            buf: self.buf,
            offset: self.offset + k,
        }
    }
}

/// C ← α op(A) op(B) + β C, all column-major as cuBLAS has them: op(A) is m × k, op(B) k × n,
/// C m × n; `lda`, `ldb`, `ldc` are the leading dimensions of the stored matrices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm<T> {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: T,
    pub a: At,
    pub lda: usize,
    pub b: At,
    pub ldb: usize,
    pub beta: T,
    pub c: At,
    pub ldc: usize,
}

/// The elementwise kernels. Streams are stored as three row-major (n × d) blocks one after the
/// other (value, d/dx, d²/dx²): in column-major terms one d × 3n matrix with leading dimension d.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kernel<T> {
    /// Layer 0 from (x, 1, 0): a (3·n·d) and σ', σ'' (2·n·d) from x (n), w0 (d), b0 (d).
    InputJets {
        x: At,
        w: At,
        b: At,
        n: usize,
        d: usize,
        a: At,
        s: At,
    },
    /// A hidden layer: the bias onto the value rows of z (3·n·d, in place), then a and σ', σ''.
    BiasJets {
        z: At,
        b: At,
        n: usize,
        d: usize,
        a: At,
        s: At,
    },
    /// The output layer's bias onto u (the first n values of the (3, n) jets).
    AddBias { u: At, b: At, n: usize },
    /// The fused residual's forward: per-tile partial sums of w ½ r² (fixed tree), from the
    /// (3, n) jets and (5, n) constants.
    ResidualLoss {
        jets: At,
        consts: At,
        n: usize,
        n_pde: usize,
        partials: At,
    },
    /// The fused residual's backward with dL/d(partial) = 1: the output adjoints (3, n) = ρ (c0, c1, c2).
    ResidualSeed {
        jets: At,
        consts: At,
        n: usize,
        n_pde: usize,
        seed: At,
    },
    /// A hidden layer's adjoints ā → z̄ in place (3·n·d), from its t (value block of a), σ', σ''
    /// and z', z''.
    HiddenAdjoints {
        bar: At,
        a: At,
        s: At,
        z: At,
        n: usize,
        d: usize,
    },
    /// Layer 0's adjoints: z̄ into `zb` (n·d) and z̄ x + z̄' into `ew` (n·d), the terms of ∂L/∂b0
    /// and ∂L/∂w0 that a gemm with a ones vector then sums over rows.
    InputAdjoints {
        bar: At,
        a: At,
        s: At,
        w: At,
        x: At,
        n: usize,
        d: usize,
        zb: At,
        ew: At,
    },
    /// Rows' Jacobian entries of a hidden (or the output) layer's weights, from its input
    /// streams h (3·n·din) and its pre-activation adjoints z̄ (3·n·dout) of the unweighted
    /// residual: J[i, col + o·din + p] = Σ_c z̄_c[i, o] h_c[i, p], J row-major with leading
    /// dimension `ldj` (N_p).
    JacobianWeights {
        h: At,
        bar: At,
        n: usize,
        din: usize,
        dout: usize,
        jac: At,
        ldj: usize,
        col: usize,
    },
    /// J[i, col + j] = src[i·d + j]: per-row terms (bias adjoints, layer 0's terms) into their
    /// Jacobian columns.
    ScatterRows {
        src: At,
        n: usize,
        d: usize,
        jac: At,
        ldj: usize,
        col: usize,
    },
    /// r_i of every row (unweighted) from the (3, n) jets and (5, n) constants.
    Residuals {
        jets: At,
        consts: At,
        n: usize,
        out: At,
    },
    /// `len` copies of `value`.
    Fill { out: At, len: usize, value: T },
    /// One Adam step over `len` parameters: θ, m, v in place from g, with the step's constants
    /// [β1, β2, 1−β1, 1−β2, 1/(1−β1^t), 1/(1−β2^t), lr, ε̂].
    Adam {
        theta: At,
        m: At,
        v: At,
        g: At,
        len: usize,
        consts: [T; 8],
    },
}

/// Where the step runs.
pub trait Backend<T: Real> {
    /// A zeroed buffer of `len` values.
    fn alloc(&mut self, len: usize) -> Result<BufId>;
    fn upload(&mut self, to: At, host: &[T]) -> Result<()>;
    fn download(&mut self, from: At, host: &mut [T]) -> Result<()>;
    fn gemm(&mut self, g: &Gemm<T>) -> Result<()>;
    fn launch(&mut self, k: &Kernel<T>) -> Result<()>;
    /// Hands the first `rows·cols` values of a buffer to candle as a row-major (rows × cols)
    /// tensor on the backend's device, without a copy where the backend can (the CUDA one moves
    /// its slice into candle's storage); the buffer is gone from the backend afterwards.
    fn hand_to_candle(
        &mut self,
        buf: BufId,
        rows: usize,
        cols: usize,
    ) -> Result<candle_core::Tensor>;
    /// Bytes the device can still allocate, where it can tell (a GPU's free memory); None on
    /// the host, where allocation is the operating system's business.
    fn free_bytes(&self) -> Option<u128> {
        None
    }
    /// Frees a buffer (its id is not reused).
    fn free(&mut self, buf: BufId) -> Result<()>;
}
