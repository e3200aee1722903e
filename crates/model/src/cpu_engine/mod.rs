//! The hand-written CPU engine: the PINN loss of eq. (7) and ∂L/∂θ for the Taylor-mode jet
//! network in one forward-and-reverse pass over batch tiles.
//!
//! Why not candle on the CPU: its autograd over the jet graph runs ~60 tensor ops forward and
//! as many backward per step, each allocating its output and walking it once (the profile at
//! N_c = 1024 on the 4×40 net: 27 % gemm, 27 % broadcast binary maps, 9 % memset). Here every
//! tile of rows goes forward through all layers, through the residual and back while its
//! activations are still in L2, the elementwise jet work is fused into one pass per layer and
//! direction, and all buffers live in a workspace that is allocated once and reused by every
//! step. The formulas are in [`kernel`]'s docs.
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

mod kernel;
pub mod real;

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Storage, Tensor, Var};

pub use kernel::Rows;
pub use real::Real;

use crate::{Activation, LossTerms, LossWithGrad, Mlp, ModelError, ResidualSet, Result};
use kernel::{Act, NetRef, Sin, Softplus, Tanh, TileWs};

/// Tile size and thread count of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Rows per tile. Chosen so a tile's streams (≈ 8·tile·width values per hidden layer) stay
    /// in L2.
    pub tile: usize,
    /// Threads working on disjoint tile ranges (1: the calling thread only).
    pub threads: usize,
}

pub const DEFAULT_TILE: usize = 128;

static ENABLED: AtomicBool = AtomicBool::new(true);
static THREADS: AtomicUsize = AtomicUsize::new(1);
static TILE: AtomicUsize = AtomicUsize::new(DEFAULT_TILE);

impl Default for EngineOptions {
    /// The process-wide defaults ([`set_default_options`]); initially one thread and
    /// [`DEFAULT_TILE`] rows, overridable by the `MSPINN_CPU_THREADS` / `MSPINN_CPU_TILE`
    /// environment variables.
    fn default() -> Self {
        env_once();
        Self {
            tile: TILE.load(Ordering::Relaxed),
            threads: THREADS.load(Ordering::Relaxed),
        }
    }
}

fn env_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let get = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
        if let Some(t) = get("MSPINN_CPU_THREADS").filter(|&t| t > 0) {
            THREADS.store(t, Ordering::Relaxed);
        }
        if let Some(t) = get("MSPINN_CPU_TILE").filter(|&t| t > 0) {
            TILE.store(t, Ordering::Relaxed);
        }
        if let Ok(v) = std::env::var("MSPINN_CPU_ENGINE") {
            if matches!(v.as_str(), "0" | "off" | "candle") {
                ENABLED.store(false, Ordering::Relaxed);
            }
        }
    });
}

/// Sets the options [`Mlp::loss`] and [`Mlp::loss_and_grad`] use on the CPU.
pub fn set_default_options(opts: EngineOptions) {
    env_once();
    TILE.store(opts.tile.max(1), Ordering::Relaxed);
    THREADS.store(opts.threads.max(1), Ordering::Relaxed);
}

/// Whether CPU networks use this engine (true) or candle's autograd (false) for the loss and
/// its gradient. `MSPINN_CPU_ENGINE=off` starts the process with false.
pub fn set_enabled(on: bool) {
    env_once();
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    env_once();
    ENABLED.load(Ordering::Relaxed)
}

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
    /// `dims` = [1, hidden…, 1].
    pub fn new(dims: &[usize], act: Activation, opts: EngineOptions) -> Result<Self> {
        if dims.len() < 3 || dims[0] != 1 || dims[dims.len() - 1] != 1 || dims.contains(&0) {
            return Err(ModelError::Config {
                field: "widths",
                value: format!("{dims:?}"),
                reason:
                    "the CPU engine takes [1, hidden…, 1] with at least one nonzero hidden width"
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

    fn matches(&self, dims: &[usize], act: Activation, opts: EngineOptions) -> bool {
        self.dims == dims && self.act == act && self.opts == opts
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
        let work = |t: usize, ws: &mut TileWs<T>| {
            ws.pde = 0.0;
            ws.bc = 0.0;
            if need_grad {
                ws.grad.fill(T::ZERO);
            }
            let (lo, hi) = (t * n_tiles / threads, (t + 1) * n_tiles / threads);
            run_tiles::<T, false>(
                act,
                isa,
                &net,
                rows,
                lo * tile,
                (hi * tile).min(n),
                tile,
                ws,
                need_grad,
                &mut [],
            );
        };
        if threads == 1 {
            work(0, &mut self.ws[0]);
        } else {
            rayon::scope(|s| {
                for (t, ws) in self.ws[..threads].iter_mut().enumerate() {
                    let work = &work;
                    s.spawn(move |_| work(t, ws));
                }
            });
        }
        let (mut pde, mut bc) = (0.0, 0.0);
        for ws in &self.ws[..threads] {
            pde += ws.pde;
            bc += ws.bc;
        }
        if let Some(g) = grad {
            g.copy_from_slice(&self.ws[0].grad);
            for ws in &self.ws[1..threads] {
                for (a, &b) in g.iter_mut().zip(&ws.grad) {
                    *a += b;
                }
            }
        }
        // The boundary sum is added last, as eq. (7) writes it.
        Ok(LossTerms {
            total: pde + bc,
            pde,
            bc,
        })
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
        let net = NetRef {
            dims: &self.dims,
            w,
            b,
            offsets: &self.offsets,
        };
        let tile = self.opts.tile;
        let n_tiles = n.div_ceil(tile);
        let threads = self.opts.threads.min(n_tiles).max(1);
        let (act, isa) = (self.act, self.isa);
        let bound = |t: usize| (t * n_tiles / threads * tile).min(n);
        let mut chunks: Vec<&mut [T]> = Vec::with_capacity(threads);
        let mut rest = out;
        for t in 0..threads {
            let (c, r) = rest.split_at_mut((bound(t + 1) - bound(t)) * np);
            chunks.push(c);
            rest = r;
        }
        let work = |t: usize, ws: &mut TileWs<T>, jac: &mut [T]| {
            ws.pde = 0.0;
            ws.bc = 0.0;
            run_tiles::<T, true>(
                act,
                isa,
                &net,
                rows,
                bound(t),
                bound(t + 1),
                tile,
                ws,
                true,
                jac,
            );
        };
        if threads == 1 {
            work(0, &mut self.ws[0], &mut *chunks[0]);
        } else {
            rayon::scope(|s| {
                for ((t, ws), jac) in self.ws[..threads].iter_mut().enumerate().zip(chunks) {
                    let work = &work;
                    s.spawn(move |_| work(t, ws, jac));
                }
            });
        }
        let (mut pde, mut bc) = (0.0, 0.0);
        for ws in &self.ws[..threads] {
            pde += ws.pde;
            bc += ws.bc;
        }
        Ok(LossTerms {
            total: pde + bc,
            pde,
            bc,
        })
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
        for (name, v) in [
            ("c0", rows.c0),
            ("c1", rows.c1),
            ("c2", rows.c2),
            ("g", rows.g),
            ("w", rows.w),
        ] {
            if v.len() != n {
                return Err(shape(
                    &format!("residual column {name}"),
                    format!("{n} rows (as x)"),
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

/// Rows start..end in tiles; in Jacobian mode `jac` holds exactly those rows of J.
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
) {
    let a = (isa, net, rows, start, end, tile);
    match act {
        Activation::Tanh => run_tiles_act::<T, Tanh, JAC>(a, ws, grad, jac),
        Activation::Sin => run_tiles_act::<T, Sin, JAC>(a, ws, grad, jac),
        Activation::Softplus => run_tiles_act::<T, Softplus, JAC>(a, ws, grad, jac),
    }
}

/// (isa, net, rows, start, end, tile) of [`run_tiles`].
type TileArgs<'a, 'b, T> = (Isa, &'a NetRef<'b, T>, &'a Rows<'b, T>, usize, usize, usize);

fn run_tiles_act<T: Real, A: Act, const JAC: bool>(
    args: TileArgs<'_, '_, T>,
    ws: &mut TileWs<T>,
    grad: bool,
    jac: &mut [T],
) {
    #[inline(always)]
    fn body<T: Real, A: Act, const FMA: bool, const JAC: bool>(
        args: TileArgs<'_, '_, T>,
        ws: &mut TileWs<T>,
        grad: bool,
        jac: &mut [T],
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
            kernel::tile::<T, A, FMA, JAC>(net, rows, r0, n, ws, grad, j);
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
        ) {
            body::<T, A, true, JAC>(args, ws, grad, jac)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: Real, A: Act, const JAC: bool>(
            args: TileArgs<'_, '_, T>,
            ws: &mut TileWs<T>,
            grad: bool,
            jac: &mut [T],
        ) {
            body::<T, A, true, JAC>(args, ws, grad, jac)
        }
        match args.0 {
            // SAFETY: `isa()` detected these features on this CPU.
            Isa::Avx512 => return unsafe { avx512::<T, A, JAC>(args, ws, grad, jac) },
            Isa::Avx2Fma => return unsafe { avx2::<T, A, JAC>(args, ws, grad, jac) },
            Isa::Base => {}
        }
    }
    body::<T, A, false, JAC>(args, ws, grad, jac)
}

// ---------------------------------------------------------------------------------------------
// Glue to candle tensors: borrow the CPU storage of the network's Vars and of the residual set
// (no copies), and keep one engine per thread and architecture so a training loop allocates
// nothing per step.

thread_local! {
    static CACHE: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's engine for (dims, act, opts), creating it on first use. The
/// engine is taken out of the cache while `f` runs, so a re-entrant call cannot alias it.
fn with_engine<T: Real, R>(
    dims: &[usize],
    act: Activation,
    opts: EngineOptions,
    f: impl FnOnce(&mut CpuEngine<T>) -> Result<R>,
) -> Result<R> {
    let taken = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let pos = c.iter().position(|e| {
            e.downcast_ref::<CpuEngine<T>>()
                .is_some_and(|e| e.matches(dims, act, opts))
        })?;
        Some(c.remove(pos))
    });
    let mut engine: Box<CpuEngine<T>> = match taken {
        Some(b) => b.downcast().expect("matched by type above"),
        None => Box::new(CpuEngine::new(dims, act, opts)?),
    };
    let out = f(&mut engine);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        // A handful of architectures per thread at most (tests); drop the oldest beyond that.
        if c.len() >= 4 {
            c.remove(0);
        }
        c.push(engine);
    });
    out
}

/// A contiguous CPU tensor's values, borrowed.
fn cpu_slice<'a, T: Real>(storage: &'a Storage, layout: &Layout) -> Option<&'a [T]> {
    let Storage::Cpu(cpu) = storage else {
        return None;
    };
    let (a, b) = layout.contiguous_offsets()?;
    Some(&cpu.as_slice::<T>().ok()?[a..b])
}

/// Whether [`Mlp::loss`] / [`Mlp::loss_and_grad`] go through this engine for `mlp` and `set`.
pub fn applies(mlp: &Mlp, set: &ResidualSet) -> bool {
    enabled()
        && mlp.device().is_cpu()
        && set.x.device().is_cpu()
        && matches!(mlp.dtype(), DType::F32 | DType::F64)
        && set.x.dtype() == mlp.dtype()
}

/// Borrows the network's parameters and rows `range` of the residual set as slices (no copies)
/// and hands them, with this thread's engine, to `f`; None where a tensor is not a contiguous
/// CPU tensor of type T.
fn with_slices<T: Real, R>(
    mlp: &Mlp,
    set: &ResidualSet,
    range: std::ops::Range<usize>,
    f: impl FnOnce(&mut CpuEngine<T>, &[&[T]], &[&[T]], &Rows<'_, T>) -> Result<R>,
) -> Result<Option<R>> {
    let nl = mlp.num_layers();
    let guards: Vec<_> = (0..nl)
        .flat_map(|l| [mlp.weight(l).as_tensor(), mlp.bias(l).as_tensor()])
        .chain([&set.x, &set.c0, &set.c1, &set.c2, &set.g, &set.w])
        .map(|t| t.storage_and_layout())
        .collect();
    let mut sl: Vec<&[T]> = Vec::with_capacity(guards.len());
    for (g, layout) in &guards {
        match cpu_slice::<T>(g, layout) {
            Some(s) => sl.push(s),
            None => return Ok(None),
        }
    }
    let w: Vec<&[T]> = (0..nl).map(|l| sl[2 * l]).collect();
    let b: Vec<&[T]> = (0..nl).map(|l| sl[2 * l + 1]).collect();
    let r = &sl[2 * nl..];
    if range.end > r[0].len() || range.start > range.end {
        return Err(ModelError::Shape {
            what: "residual rows".into(),
            expected: format!("a range within 0..{}", r[0].len()),
            got: format!("{range:?}"),
        });
    }
    fn cut<'a, T>(v: &'a [T], r: &std::ops::Range<usize>) -> &'a [T] {
        &v[r.clone()]
    }
    let rows = Rows {
        x: cut(r[0], &range),
        c0: cut(r[1], &range),
        c1: cut(r[2], &range),
        c2: cut(r[3], &range),
        g: cut(r[4], &range),
        w: cut(r[5], &range),
        n_pde: set.n_pde.saturating_sub(range.start).min(range.len()),
    };
    let dims = mlp.config().dims();
    with_engine::<T, _>(&dims, mlp.activation(), EngineOptions::default(), |e| {
        f(e, &w, &b, &rows)
    })
    .map(Some)
}

fn run_mlp<T: Real>(
    mlp: &Mlp,
    set: &ResidualSet,
    grad: Option<&mut [T]>,
) -> Result<Option<LossTerms>> {
    with_slices::<T, _>(mlp, set, 0..set.len(), |e, w, b, rows| {
        e.run(w, b, rows, grad)
    })
}

/// J = ∂r/∂θ of residual rows `start .. start + len` (unweighted, r = c2 u'' + c1 u' + c0 u − g),
/// row-major len × N_p in flat parameter order ([`Mlp::vars`] order), in the network's dtype;
/// None where the engine does not apply. Threads: [`EngineOptions::threads`].
pub fn jacobian(
    mlp: &Mlp,
    set: &ResidualSet,
    start: usize,
    len: usize,
) -> Result<Option<FlatGrad>> {
    if !applies(mlp, set) {
        return Ok(None);
    }
    let np = mlp.num_params();
    let range = start..start.saturating_add(len);
    match mlp.dtype() {
        DType::F32 => {
            let mut j = vec![0f32; len * np];
            Ok(with_slices::<f32, _>(mlp, set, range, |e, w, b, rows| {
                e.jacobian(w, b, rows, &mut j)
            })?
            .map(|_| FlatGrad::F32(j)))
        }
        _ => {
            let mut j = vec![0f64; len * np];
            Ok(with_slices::<f64, _>(mlp, set, range, |e, w, b, rows| {
                e.jacobian(w, b, rows, &mut j)
            })?
            .map(|_| FlatGrad::F64(j)))
        }
    }
}

/// The loss terms through the engine, or None where it does not apply (see [`applies`]).
pub fn loss(mlp: &Mlp, set: &ResidualSet) -> Result<Option<LossTerms>> {
    if !applies(mlp, set) {
        return Ok(None);
    }
    match mlp.dtype() {
        DType::F32 => run_mlp::<f32>(mlp, set, None),
        _ => run_mlp::<f64>(mlp, set, None),
    }
}

/// [`jacobian`] into a caller's f64 buffer, resized to len × N_p and overwritten: a loop that
/// relinearises every iteration (Levenberg–Marquardt) reuses one buffer rather than faulting in
/// fresh pages for each J, which the kernel zeroes first (on this project's KVM machines that
/// zeroing cost more than computing J). False where the engine does not apply.
pub fn jacobian_f64_into(
    mlp: &Mlp,
    set: &ResidualSet,
    start: usize,
    len: usize,
    out: &mut Vec<f64>,
) -> Result<bool> {
    if !applies(mlp, set) {
        return Ok(false);
    }
    if mlp.dtype() != DType::F64 {
        return Ok(match jacobian(mlp, set, start, len)? {
            Some(j) => {
                *out = j.into_f64();
                true
            }
            None => false,
        });
    }
    out.resize(len * mlp.num_params(), 0.0);
    Ok(with_slices::<f64, _>(
        mlp,
        set,
        start..start.saturating_add(len),
        |e, w, b, rows| e.jacobian(w, b, rows, out),
    )?
    .is_some())
}

/// ∂L/∂θ in flat parameter order, in the network's dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum FlatGrad {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl FlatGrad {
    pub fn zeros(dtype: DType, n: usize) -> Result<Self> {
        match dtype {
            DType::F32 => Ok(Self::F32(vec![0.0; n])),
            DType::F64 => Ok(Self::F64(vec![0.0; n])),
            other => Err(ModelError::DType(other)),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Self::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Self::F64(v) => v.clone(),
        }
    }
    /// As [`Self::to_f64`] without copying an f64 vector.
    pub fn into_f64(self) -> Vec<f64> {
        match self {
            Self::F32(v) => v.into_iter().map(f64::from).collect(),
            Self::F64(v) => v,
        }
    }
}

/// The loss terms and ∂L/∂θ into `grad` (reused, resized to the network's dtype and N_p if it
/// does not match), or None where the engine does not apply.
pub fn loss_and_grad_flat(
    mlp: &Mlp,
    set: &ResidualSet,
    grad: &mut FlatGrad,
) -> Result<Option<LossTerms>> {
    if !applies(mlp, set) {
        return Ok(None);
    }
    let np = mlp.num_params();
    match (mlp.dtype(), &mut *grad) {
        (DType::F32, FlatGrad::F32(g)) if g.len() == np => run_mlp::<f32>(mlp, set, Some(g)),
        (DType::F64, FlatGrad::F64(g)) if g.len() == np => run_mlp::<f64>(mlp, set, Some(g)),
        (dt, _) => {
            *grad = FlatGrad::zeros(dt, np)?;
            loss_and_grad_flat(mlp, set, grad)
        }
    }
}

/// [`Mlp::loss_and_grad`]'s result through the engine, or None where it does not apply.
pub fn loss_and_grad(mlp: &Mlp, set: &ResidualSet) -> Result<Option<LossWithGrad>> {
    let mut flat = FlatGrad::zeros(mlp.dtype(), mlp.num_params())?;
    let Some(terms) = loss_and_grad_flat(mlp, set, &mut flat)? else {
        return Ok(None);
    };
    let dev = mlp.device();
    let mut grads = Vec::with_capacity(2 * mlp.num_layers());
    let mut off = 0;
    for v in mlp.vars() {
        let k = v.elem_count();
        let t = match &flat {
            FlatGrad::F32(g) => Tensor::from_slice(&g[off..off + k], v.shape(), dev)?,
            FlatGrad::F64(g) => Tensor::from_slice(&g[off..off + k], v.shape(), dev)?,
        };
        grads.push(t);
        off += k;
    }
    Ok(Some(LossWithGrad { terms, grads }))
}

/// Calls `f` with the values of a contiguous CPU variable of dtype T, mutably and in place (no
/// copy, no allocation): for optimisers that keep their state on the host.
pub fn update_var_in_place<T: Real>(var: &Var, f: &mut dyn FnMut(&mut [T])) -> Result<()> {
    type HostUpdate<'a, T> = RefCell<&'a mut dyn FnMut(&mut [T])>;
    struct Op<'a, T>(HostUpdate<'a, T>);
    impl<T: Real> candle_core::InplaceOp1 for Op<'_, T> {
        fn name(&self) -> &'static str {
            "mspinn-host-update"
        }
        fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
            let (a, b) = layout.contiguous_offsets().ok_or_else(|| {
                candle_core::Error::Msg("host update of a non-contiguous variable".into())
            })?;
            let dt = storage.dtype();
            let s: &mut [T] = match storage {
                CpuStorage::F32(v) if <T as candle_core::WithDType>::DTYPE == DType::F32 => {
                    // SAFETY: T is f32 here (checked through <T as candle_core::WithDType>::DTYPE).
                    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut T, v.len()) }
                }
                CpuStorage::F64(v) if <T as candle_core::WithDType>::DTYPE == DType::F64 => {
                    // SAFETY: T is f64 here (checked through <T as candle_core::WithDType>::DTYPE).
                    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut T, v.len()) }
                }
                _ => {
                    return Err(candle_core::Error::Msg(format!(
                        "host update as {:?} of a {dt:?} variable",
                        <T as candle_core::WithDType>::DTYPE
                    )))
                }
            };
            (self.0.borrow_mut())(&mut s[a..b]);
            Ok(())
        }
    }
    var.as_tensor().inplace_op1(&Op(RefCell::new(f)))?;
    Ok(())
}
