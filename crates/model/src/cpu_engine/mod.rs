//! The hand-written CPU engine: the PINN loss of eq. (7) and ∂L/∂θ for the Taylor-mode jet
//! network in one forward-and-reverse pass over batch tiles.
//!
//! Why not candle on the CPU: its autograd over the jet graph runs ~60 tensor ops forward and
//! as many backward per step, each allocating its output and walking it once (the profile at
//! N_c = 1024 on the 4×40 net: 27 % gemm, 27 % broadcast binary maps, 9 % memset). Here every
//! tile of rows goes forward through all layers, through the residual and back while its
//! activations are still in L2, the elementwise jet work is fused into one pass per layer and
//! direction, and all buffers live in a workspace that is allocated once and reused by every
//! step. The formulas are in [`tile`]'s docs.
//!
//! The matmuls go through faer's `matmul`, which dispatches to private-gemm-x86 (runtime-selected
//! AVX-512 / AVX2 micro-kernels, also good for the skinny 3n × 40 × 40 products here) and to
//! nano-gemm for tiny ones: a well-kept gemm, where a hand-written one would be slower and
//! another thing to maintain. The elementwise loops are compiled three times (AVX-512, AVX2+FMA,
//! baseline) and picked at run time; tanh is the vectorisable one of [`real`].
//!
//! Threads: tiles are split into `threads` contiguous ranges, one per thread (rayon's pool), each
//! accumulating into its own gradient buffer; the buffers are then added in thread order. The
//! result is therefore bit-identical from run to run for a given thread count (and tile size).
//! The default is one thread: the trainer runs one trial per core, and a second thread buys
//! little at the paper's N_c (see the crate's `cpu_engine` example for the measurement).
//!
//! Consumers reach the engine through the evaluation seam ([`crate::evaluator::CpuEvaluator`]);
//! this module works on plain slices.

mod tile;

pub use tile::Rows;

pub mod reference;

use crate::{Activation, EngineOptions, LossTerms, ModelError, Real, Result};
use tile::{Act, NetRef, Sin, Softplus, Tanh, TileWs};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2Fma,
    Base,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2Fma;
        }
    }
    Isa::Base
}

/// The engine for one architecture and scalar type, with its workspace.
pub struct CpuEngine<T: Real> {
    dims: Vec<usize>,
    act: Activation,
    opts: EngineOptions,
    offsets: Vec<(usize, usize)>,
    n_params: usize,
    ws: Vec<TileWs<T>>,
    isa: Isa,
}

impl<T: Real> CpuEngine<T> {
    /// `dims` = [d, hidden…, 1]: d = 1 runs the 1-D tile, d > 1 the d-dimensional one
    /// ([`tile::nd`]) with 1 + 2d streams.
    pub fn new(dims: &[usize], act: Activation, opts: EngineOptions) -> Result<Self> {
        if dims.len() < 3 || dims[dims.len() - 1] != 1 || dims.contains(&0) {
            return Err(ModelError::Config {
                field: "widths",
                value: format!("{dims:?}"),
                reason:
                    "the CPU engine takes [d, hidden…, 1] with at least one nonzero hidden width"
                        .into(),
            });
        }
        let opts = EngineOptions {
            tile: opts.tile.max(1),
            threads: opts.threads.max(1),
        };
        let mut offsets = Vec::with_capacity(dims.len() - 1);
        let mut off = 0;
        for w in dims.windows(2) {
            offsets.push((off, off + w[0] * w[1]));
            off += w[0] * w[1] + w[1];
        }
        let ws = (0..opts.threads)
            .map(|_| TileWs::new(dims, opts.tile, off))
            .collect();
        Ok(Self {
            dims: dims.to_vec(),
            act,
            opts,
            offsets,
            n_params: off,
            ws,
            isa: isa(),
        })
    }

    pub fn options(&self) -> EngineOptions {
        self.opts
    }
    pub fn num_params(&self) -> usize {
        self.n_params
    }
    /// Bytes of one thread's tile buffers (what should fit in L2).
    pub fn tile_bytes(&self) -> usize {
        self.ws[0].bytes()
    }

    /// The loss terms, and ∂L/∂θ in flat order (W0, b0, W1, b1, …; weights (out, in) row-major)
    /// into `grad` when given. `w[l]` / `b[l]` are layer l's weight and bias.
    pub fn run(
        &mut self,
        w: &[&[T]],
        b: &[&[T]],
        rows: &Rows<'_, T>,
        grad: Option<&mut [T]>,
    ) -> Result<LossTerms> {
        self.check(w, b, rows, grad.as_deref())?;
        let need_grad = grad.is_some();
        let threads = self.sweep::<false>(w, b, rows, need_grad, &mut [], &mut [])?;
        if let Some(g) = grad {
            g.copy_from_slice(&self.ws[0].grad);
            for ws in &self.ws[1..threads] {
                for (a, &b) in g.iter_mut().zip(&ws.grad) {
                    *a += b;
                }
            }
        }
        Ok(self.loss_terms(threads))
    }

    /// The residual r_i of every row into `out` (one per row), and the loss terms of the same
    /// forward pass. Threads write disjoint row blocks.
    pub fn residuals(
        &mut self,
        w: &[&[T]],
        b: &[&[T]],
        rows: &Rows<'_, T>,
        out: &mut [T],
    ) -> Result<LossTerms> {
        self.check(w, b, rows, None)?;
        let n = rows.len();
        if out.len() != n {
            return Err(ModelError::Shape {
                what: "residual buffer".into(),
                expected: format!("{n} rows"),
                got: out.len().to_string(),
            });
        }
        let threads = self.sweep::<false>(w, b, rows, false, &mut [], out)?;
        Ok(self.loss_terms(threads))
    }

    /// J = ∂r/∂θ of every row into `out` (N × N_p, row-major, flat parameter order as
    /// [`Self::run`]'s gradient); r = c2 u'' + c1 u' + c0 u − g, unweighted (`rows.w` only
    /// enters the loss terms, which are returned as a by-product). Threads take contiguous
    /// tile ranges and write disjoint row blocks, so the result does not depend on them.
    pub fn jacobian(
        &mut self,
        w: &[&[T]],
        b: &[&[T]],
        rows: &Rows<'_, T>,
        out: &mut [T],
    ) -> Result<LossTerms> {
        self.check(w, b, rows, None)?;
        let n = rows.len();
        let np = self.n_params;
        if out.len() != n * np {
            return Err(ModelError::Shape {
                what: "Jacobian buffer".into(),
                expected: format!("{n} × {np} = {}", n * np),
                got: out.len().to_string(),
            });
        }
        let threads = self.sweep::<true>(w, b, rows, true, out, &mut [])?;
        Ok(self.loss_terms(threads))
    }

    /// The loss sums of the threads that ran, added in thread order; the boundary sum is added
    /// last, as eq. (7) writes it.
    fn loss_terms(&self, threads: usize) -> LossTerms {
        let (mut pde, mut bc) = (0.0, 0.0);
        for ws in &self.ws[..threads] {
            pde += ws.pde;
            bc += ws.bc;
        }
        LossTerms {
            total: pde + bc,
            pde,
            bc,
        }
    }

    /// Every row through the tiles, threads taking contiguous tile ranges; per-row outputs
    /// (`jac`: N_p values a row, `res`: one; empty when not wanted) are split into the threads'
    /// disjoint row blocks. Returns the number of threads that ran.
    fn sweep<const JAC: bool>(
        &mut self,
        w: &[&[T]],
        b: &[&[T]],
        rows: &Rows<'_, T>,
        need_grad: bool,
        jac: &mut [T],
        res: &mut [T],
    ) -> Result<usize> {
        let net = NetRef {
            dims: &self.dims,
            w,
            b,
            offsets: &self.offsets,
        };
        let n = rows.len();
        let tile = self.opts.tile;
        let n_tiles = n.div_ceil(tile);
        let threads = self.opts.threads.min(n_tiles).max(1);
        let (act, isa) = (self.act, self.isa);
        let bound = |t: usize| (t * n_tiles / threads * tile).min(n);
        /// `buf` cut into the threads' row blocks (`per_row` values a row), or empty parts.
        fn split<T>(
            mut rest: &mut [T],
            per_row: usize,
            threads: usize,
            bound: impl Fn(usize) -> usize,
        ) -> Vec<&mut [T]> {
            let mut parts = Vec::with_capacity(threads);
            for t in 0..threads {
                let len = if rest.is_empty() {
                    0
                } else {
                    (bound(t + 1) - bound(t)) * per_row
                };
                let (part, r) = std::mem::take(&mut rest).split_at_mut(len);
                parts.push(part);
                rest = r;
            }
            parts
        }
        let jacs = split(jac, self.n_params, threads, bound);
        let ress = split(res, 1, threads, bound);
        let work = |t: usize, ws: &mut TileWs<T>, jac: &mut [T], res: &mut [T]| {
            ws.pde = 0.0;
            ws.bc = 0.0;
            if need_grad && !JAC {
                ws.grad.fill(T::ZERO);
            }
            run_tiles::<T, JAC>(
                act,
                isa,
                &net,
                rows,
                bound(t),
                bound(t + 1),
                tile,
                ws,
                need_grad,
                jac,
                res,
            );
        };
        if threads == 1 {
            let (mut jacs, mut ress) = (jacs, ress);
            work(0, &mut self.ws[0], &mut *jacs[0], &mut *ress[0]);
        } else {
            rayon::scope(|s| {
                for (((t, ws), jac), res) in self.ws[..threads]
                    .iter_mut()
                    .enumerate()
                    .zip(jacs)
                    .zip(ress)
                {
                    let work = &work;
                    s.spawn(move |_| work(t, ws, jac, res));
                }
            });
        }
        Ok(threads)
    }

    fn check(&self, w: &[&[T]], b: &[&[T]], rows: &Rows<'_, T>, grad: Option<&[T]>) -> Result<()> {
        let shape = |what: &str, expected: String, got: String| ModelError::Shape {
            what: what.into(),
            expected,
            got,
        };
        let nl = self.dims.len() - 1;
        if w.len() != nl || b.len() != nl {
            return Err(shape(
                "engine layers",
                nl.to_string(),
                format!("{} weights, {} biases", w.len(), b.len()),
            ));
        }
        for l in 0..nl {
            let (i, o) = (self.dims[l], self.dims[l + 1]);
            if w[l].len() != i * o || b[l].len() != o {
                return Err(shape(
                    &format!("layer {l}"),
                    format!("weight {o}×{i}, bias {o}"),
                    format!("weight of {} values, bias of {}", w[l].len(), b[l].len()),
                ));
            }
        }
        let n = rows.len();
        let d = self.dims[0];
        for (name, v, per_row) in [
            ("x", rows.x, d),
            ("c1", rows.c1, d),
            ("c2", rows.c2, d),
            ("g", rows.g, 1),
            ("w", rows.w, 1),
        ] {
            if v.len() != n * per_row {
                return Err(shape(
                    &format!("residual column {name}"),
                    format!("{n} rows (as c0) × {per_row}"),
                    v.len().to_string(),
                ));
            }
        }
        if rows.n_pde > n {
            return Err(shape(
                "residual rows",
                format!("n_pde ≤ {n}"),
                rows.n_pde.to_string(),
            ));
        }
        if let Some(g) = grad {
            if g.len() != self.n_params {
                return Err(shape(
                    "gradient buffer",
                    self.n_params.to_string(),
                    g.len().to_string(),
                ));
            }
        }
        Ok(())
    }
}

/// Rows start..end in tiles; in Jacobian mode `jac` holds exactly those rows of J, and a
/// non-empty `res` exactly those rows' residuals.
#[allow(clippy::too_many_arguments)]
fn run_tiles<T: Real, const JAC: bool>(
    act: Activation,
    isa: Isa,
    net: &NetRef<'_, T>,
    rows: &Rows<'_, T>,
    start: usize,
    end: usize,
    tile: usize,
    ws: &mut TileWs<T>,
    grad: bool,
    jac: &mut [T],
    res: &mut [T],
) {
    let a = (isa, net, rows, start, end, tile);
    match act {
        Activation::Tanh => run_tiles_act::<T, Tanh, JAC>(a, ws, grad, jac, res),
        Activation::Sin => run_tiles_act::<T, Sin, JAC>(a, ws, grad, jac, res),
        Activation::Softplus => run_tiles_act::<T, Softplus, JAC>(a, ws, grad, jac, res),
    }
}

/// (isa, net, rows, start, end, tile) of [`run_tiles`].
type TileArgs<'a, 'b, T> = (Isa, &'a NetRef<'b, T>, &'a Rows<'b, T>, usize, usize, usize);

fn run_tiles_act<T: Real, A: Act, const JAC: bool>(
    args: TileArgs<'_, '_, T>,
    ws: &mut TileWs<T>,
    grad: bool,
    jac: &mut [T],
    res: &mut [T],
) {
    #[inline(always)]
    fn body<T: Real, A: Act, const FMA: bool, const JAC: bool>(
        args: TileArgs<'_, '_, T>,
        ws: &mut TileWs<T>,
        grad: bool,
        jac: &mut [T],
        res: &mut [T],
    ) {
        let (_, net, rows, start, end, tile) = args;
        let np = if JAC {
            jac.len() / (end - start).max(1)
        } else {
            0
        };
        let mut r0 = start;
        while r0 < end {
            let n = tile.min(end - r0);
            let j = if JAC {
                &mut jac[(r0 - start) * np..(r0 - start + n) * np]
            } else {
                &mut jac[..0]
            };
            let r = if res.is_empty() {
                &mut res[..0]
            } else {
                &mut res[r0 - start..r0 - start + n]
            };
            if net.dims[0] == 1 {
                tile::tile::<T, A, FMA, JAC>(net, rows, r0, n, ws, grad, j, r);
            } else {
                tile::nd::tile_nd::<T, A, FMA, JAC>(net, rows, r0, n, ws, grad, j, r);
            }
            r0 += n;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
        unsafe fn avx512<T: Real, A: Act, const JAC: bool>(
            args: TileArgs<'_, '_, T>,
            ws: &mut TileWs<T>,
            grad: bool,
            jac: &mut [T],
            res: &mut [T],
        ) {
            body::<T, A, true, JAC>(args, ws, grad, jac, res)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: Real, A: Act, const JAC: bool>(
            args: TileArgs<'_, '_, T>,
            ws: &mut TileWs<T>,
            grad: bool,
            jac: &mut [T],
            res: &mut [T],
        ) {
            body::<T, A, true, JAC>(args, ws, grad, jac, res)
        }
        match args.0 {
            // SAFETY: `isa()` detected these features on this CPU.
            Isa::Avx512 => return unsafe { avx512::<T, A, JAC>(args, ws, grad, jac, res) },
            Isa::Avx2Fma => return unsafe { avx2::<T, A, JAC>(args, ws, grad, jac, res) },
            Isa::Base => {}
        }
    }
    body::<T, A, false, JAC>(args, ws, grad, jac, res)
}
