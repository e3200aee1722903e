//! The device engine's loss-and-gradient step, written once against [`Backend`]: the CPU engine's
//! design (flat parameter and gradient buffers, per layer one gemm plus one fused elementwise
//! kernel, the fused residual, the reverse sweep as gemms plus elementwise kernels) over the
//! whole batch instead of cache tiles.
//!
//! Layout: a layer's three streams of n rows are three row-major (n × d) blocks, i.e. one
//! column-major d × 3n matrix with leading dimension d, so each affine layer is one gemm in
//! cuBLAS's convention. With W (d_out × d_in, row-major) = column-major d_in × d_out:
//!
//! ```text
//! Z = H Wᵀ        →  Z (d_out × 3n) = op(W)ᵀ·H:     gemm(T, N, d_out, 3n, d_in, W, H, Z)
//! ∂W = Z̄ᵀ H       →  ∂W (d_in × d_out) = H·Z̄ᵀ:      gemm(N, T, d_in, d_out, 3n, H, Z̄, ∂W)
//! H̄ = Z̄ W         →  H̄ (d_in × 3n) = W·Z̄:          gemm(N, N, d_in, 3n, d_out, W, Z̄, H̄)
//! ∂b = Σ_rows z̄   →  ∂b (d_out × 1) = Z̄_value·1:   gemm(N, N, d_out, 1, n, Z̄, ones, ∂b)
//! ```
//!
//! Every parameter's gradient is written exactly once per step (β = 0), so no zeroing pass.

use super::backend::{At, Backend, BufId, Gemm, Kernel};
use super::plan::StepPlan;
use crate::{Activation, LossTerms, Mlp, ModelError, Real, ResidualSet, Result};

/// The step's buffers on a backend, for one architecture and one set of rows.
pub struct DeviceStep<T, B> {
    pub plan: StepPlan,
    /// Rows the buffers were allocated for ([`Self::reload`] may use fewer).
    pub(super) capacity: usize,
    /// Adam's moments, allocated by the first fused step ([`super::adam`]).
    pub(super) moments: Option<(BufId, BufId)>,
    pub(super) backend: B,
    pub(super) params: BufId,
    pub(super) grad: BufId,
    pub(super) x: BufId,
    pub(super) consts: BufId,
    pub(super) z: Vec<BufId>,
    pub(super) a: Vec<BufId>,
    pub(super) s: Vec<BufId>,
    pub(super) bar: [BufId; 2],
    pub(super) partials: BufId,
    pub(super) ones: BufId,
    pub(super) zb0: BufId,
    pub(super) ew: BufId,
    _t: std::marker::PhantomData<T>,
}

pub(super) fn at(buf: BufId) -> At {
    At::new(buf, 0)
}

impl<T: Real, B: Backend<T>> DeviceStep<T, B> {
    /// Allocates every buffer of `plan` on `backend` and uploads the rows: x (n) and the
    /// constants (5, n) = (c0, c1, c2, g, w), which stay on the device for every step.
    pub fn new(mut backend: B, plan: StepPlan, x: &[T], consts: &[T]) -> Result<Self> {
        if x.len() != plan.n || consts.len() != 5 * plan.n {
            return Err(ModelError::Shape {
                what: "device step rows".into(),
                expected: format!("{} points and 5 × {} constants", plan.n, plan.n),
                got: format!("{} points and {} constants", x.len(), consts.len()),
            });
        }
        let mut alloc = |len: usize| backend.alloc(len);
        let (params, grad) = (alloc(plan.n_params)?, alloc(plan.n_params)?);
        let (xb, cb) = (alloc(plan.n)?, alloc(5 * plan.n)?);
        let z = plan
            .z_len
            .iter()
            .map(|&l| alloc(l))
            .collect::<Result<Vec<_>>>()?;
        let a = plan
            .a_len
            .iter()
            .map(|&l| alloc(l))
            .collect::<Result<Vec<_>>>()?;
        let s = plan
            .s_len
            .iter()
            .map(|&l| alloc(l))
            .collect::<Result<Vec<_>>>()?;
        let bar = [alloc(plan.bar_len)?, alloc(plan.bar_len)?];
        // Tiles of any reload within the capacity: ⌈a/B⌉ + ⌈b/B⌉ ≤ ⌈(a+b)/B⌉ + 1.
        let partials = alloc(max_tiles(plan.n))?;
        let ones = alloc(plan.n)?;
        let d1 = plan.dims[1];
        let (zb0, ew) = (alloc(plan.n * d1)?, alloc(plan.n * d1)?);
        backend.upload(at(xb), x)?;
        backend.upload(at(cb), consts)?;
        backend.launch(&Kernel::Fill {
            out: at(ones),
            len: plan.n,
            value: T::ONE,
        })?;
        Ok(Self {
            capacity: plan.n,
            moments: None,
            plan,
            backend,
            params,
            grad,
            x: xb,
            consts: cb,
            z,
            a,
            s,
            bar,
            partials,
            ones,
            zb0,
            ew,
            _t: std::marker::PhantomData,
        })
    }

    /// The step for `mlp`'s architecture on `set`'s rows (the kernels are tanh's: another
    /// activation is refused, naming it).
    pub fn for_network(backend: B, mlp: &Mlp, set: &ResidualSet) -> Result<Self> {
        if mlp.activation() != Activation::Tanh {
            return Err(ModelError::Config {
                field: "activation",
                value: mlp.activation().name().into(),
                reason: "the device engine's kernels are tanh's".into(),
            });
        }
        let plan = StepPlan::new(&mlp.config().dims(), set.len(), set.n_pde);
        let h = &set.host;
        let x: Vec<T> = h.x.iter().map(|&v| T::of(v)).collect();
        let consts: Vec<T> = [&h.c0, &h.c1, &h.c2, &h.g, &set.host_w]
            .into_iter()
            .flat_map(|c| c.iter().map(|&v| T::of(v)))
            .collect();
        Self::new(backend, plan, &x, &consts)
    }

    /// The backend, e.g. to read a buffer in a test.
    pub fn backend(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The loss terms at `theta` (flat parameter order), and ∂L/∂θ into `grad` when given.
    pub fn run(&mut self, theta: &[T], grad: Option<&mut [T]>) -> Result<LossTerms> {
        if grad.as_ref().is_some_and(|g| g.len() != self.plan.n_params) {
            return Err(self.params_shape(grad.map_or(0, |g| g.len())));
        }
        self.set_params(theta)?;
        match grad {
            Some(g) => {
                let terms = self.loss_and_grad_resident()?;
                self.backend.download(at(self.grad), g)?;
                Ok(terms)
            }
            None => self.loss_resident(),
        }
    }

    fn params_shape(&self, got: usize) -> ModelError {
        ModelError::Shape {
            what: "device step parameters".into(),
            expected: self.plan.n_params.to_string(),
            got: got.to_string(),
        }
    }

    /// Uploads θ (flat parameter order) into the device's parameter buffer.
    pub fn set_params(&mut self, theta: &[T]) -> Result<()> {
        if theta.len() != self.plan.n_params {
            return Err(self.params_shape(theta.len()));
        }
        self.backend.upload(at(self.params), theta)
    }

    /// Rows the buffers hold at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Downloads ∂L/∂θ as the last backward pass left it.
    pub fn download_grad(&mut self, g: &mut [T]) -> Result<()> {
        if g.len() != self.plan.n_params {
            return Err(self.params_shape(g.len()));
        }
        self.backend.download(at(self.grad), g)
    }

    /// Downloads the device's θ.
    pub fn params(&mut self, theta: &mut [T]) -> Result<()> {
        if theta.len() != self.plan.n_params {
            return Err(self.params_shape(theta.len()));
        }
        self.backend.download(at(self.params), theta)
    }

    /// The loss terms at the parameters already on the device.
    pub fn loss_resident(&mut self) -> Result<LossTerms> {
        let p = self.plan.clone();
        self.forward(&p)?;
        self.loss(&p)
    }

    /// The loss terms and ∂L/∂θ (left in the device's gradient buffer) at the parameters
    /// already on the device.
    pub fn loss_and_grad_resident(&mut self) -> Result<LossTerms> {
        let p = self.plan.clone();
        self.forward(&p)?;
        let terms = self.loss(&p)?;
        self.backward(&p)?;
        Ok(terms)
    }

    /// Replaces the rows by `x` (n ≤ the capacity) and their constants (5, n), keeping every
    /// buffer: a chunked Jacobian walks the rows through one allocation.
    pub fn reload(&mut self, x: &[T], consts: &[T], n_pde: usize) -> Result<()> {
        let n = x.len();
        if n > self.capacity || consts.len() != 5 * n || n_pde > n {
            return Err(ModelError::Shape {
                what: "device step rows".into(),
                expected: format!("at most {} points, 5 constants each", self.capacity),
                got: format!("{n} points ({n_pde} PDE) and {} constants", consts.len()),
            });
        }
        self.plan = StepPlan::new(&self.plan.dims, n, n_pde);
        self.backend.upload(at(self.x), x)?;
        self.backend.upload(at(self.consts), consts)
    }

    pub(super) fn gemm(&mut self, g: Gemm<T>) -> Result<()> {
        self.backend.gemm(&g)
    }

    pub(super) fn forward(&mut self, p: &StepPlan) -> Result<()> {
        let (n, dims, nl) = (p.n, &p.dims, p.dims.len() - 1);
        let (ow0, ob0) = p.offsets[0];
        self.backend.launch(&Kernel::InputJets {
            x: at(self.x),
            w: At::new(self.params, ow0),
            b: At::new(self.params, ob0),
            n,
            d: dims[1],
            a: at(self.a[0]),
            s: at(self.s[0]),
        })?;
        for l in 1..nl {
            let (din, dout) = (dims[l], dims[l + 1]);
            let (ow, ob) = p.offsets[l];
            let z = at(self.z[l - 1]);
            self.gemm(Gemm {
                trans_a: true,
                trans_b: false,
                m: dout,
                n: 3 * n,
                k: din,
                alpha: T::ONE,
                a: At::new(self.params, ow),
                lda: din,
                b: at(self.a[l - 1]),
                ldb: din,
                beta: T::ZERO,
                c: z,
                ldc: dout,
            })?;
            let b = At::new(self.params, ob);
            if l < nl - 1 {
                self.backend.launch(&Kernel::BiasJets {
                    z,
                    b,
                    n,
                    d: dout,
                    a: at(self.a[l]),
                    s: at(self.s[l]),
                })?;
            } else {
                self.backend.launch(&Kernel::AddBias { u: z, b, n })?;
            }
        }
        Ok(())
    }

    /// Sums the tile partials on the host in a fixed order, PDE tiles then boundary tiles.
    pub(super) fn loss(&mut self, p: &StepPlan) -> Result<LossTerms> {
        let jets = at(self.z[p.z_len.len() - 1]);
        self.backend.launch(&Kernel::ResidualLoss {
            jets,
            consts: at(self.consts),
            n: p.n,
            n_pde: p.n_pde,
            partials: at(self.partials),
        })?;
        let mut parts = vec![T::ZERO; p.n_tiles];
        self.backend.download(at(self.partials), &mut parts)?;
        let tiles_pde = mspinn_kernels::Tiles::new(p.n, p.n_pde).tiles_pde;
        let sum = |v: &[T]| v.iter().map(|x| x.to_f64()).sum::<f64>();
        let (pde, bc) = (sum(&parts[..tiles_pde]), sum(&parts[tiles_pde..]));
        Ok(LossTerms {
            total: pde + bc,
            pde,
            bc,
        })
    }

    fn backward(&mut self, p: &StepPlan) -> Result<()> {
        let (n, dims, nl) = (p.n, &p.dims, p.dims.len() - 1);
        let jets = at(self.z[p.z_len.len() - 1]);
        let mut cur = 0;
        self.backend.launch(&Kernel::ResidualSeed {
            jets,
            consts: at(self.consts),
            n,
            n_pde: p.n_pde,
            seed: at(self.bar[cur]),
        })?;
        for l in (1..nl).rev() {
            let (din, dout) = (dims[l], dims[l + 1]);
            let (ow, ob) = p.offsets[l];
            let zb = at(self.bar[cur]);
            if l < nl - 1 {
                self.hidden_adjoints(p, l, zb)?;
            }
            // ∂b = Σ_rows z̄ (value block), ∂W = H·Z̄ᵀ, H̄ = W·Z̄.
            self.column_sums(zb, dout, At::new(self.grad, ob))?;
            self.gemm(Gemm {
                trans_a: false,
                trans_b: true,
                m: din,
                n: dout,
                k: 3 * n,
                alpha: T::ONE,
                a: at(self.a[l - 1]),
                lda: din,
                b: zb,
                ldb: dout,
                beta: T::ZERO,
                c: At::new(self.grad, ow),
                ldc: din,
            })?;
            self.propagate_adjoints(p, l, zb, at(self.bar[1 - cur]))?;
            cur = 1 - cur;
        }
        let d1 = dims[1];
        let (ow0, ob0) = p.offsets[0];
        self.input_adjoints(p, at(self.bar[cur]))?;
        self.column_sums(at(self.zb0), d1, At::new(self.grad, ob0))?;
        self.column_sums(at(self.ew), d1, At::new(self.grad, ow0))
    }

    /// A hidden layer's adjoints ā → z̄, in place in `zb`.
    pub(super) fn hidden_adjoints(&mut self, p: &StepPlan, l: usize, zb: At) -> Result<()> {
        self.backend.launch(&Kernel::HiddenAdjoints {
            bar: zb,
            a: at(self.a[l]),
            s: at(self.s[l]),
            z: at(self.z[l - 1]),
            n: p.n,
            d: p.dims[l + 1],
        })
    }

    /// H̄ = W·Z̄: layer l's pre-activation adjoints `zb` to its input's adjoints `out`.
    pub(super) fn propagate_adjoints(
        &mut self,
        p: &StepPlan,
        l: usize,
        zb: At,
        out: At,
    ) -> Result<()> {
        let (din, dout) = (p.dims[l], p.dims[l + 1]);
        self.gemm(Gemm {
            trans_a: false,
            trans_b: false,
            m: din,
            n: 3 * p.n,
            k: dout,
            alpha: T::ONE,
            a: At::new(self.params, p.offsets[l].0),
            lda: din,
            b: zb,
            ldb: dout,
            beta: T::ZERO,
            c: out,
            ldc: din,
        })
    }

    /// Layer 0's per-row terms z̄ (into `zb0`) and z̄ x + z̄' (into `ew`) from its adjoints `bar`.
    pub(super) fn input_adjoints(&mut self, p: &StepPlan, bar: At) -> Result<()> {
        let ow0 = p.offsets[0].0;
        self.backend.launch(&Kernel::InputAdjoints {
            bar,
            a: at(self.a[0]),
            s: at(self.s[0]),
            w: At::new(self.params, ow0),
            x: at(self.x),
            n: p.n,
            d: p.dims[1],
            zb: at(self.zb0),
            ew: at(self.ew),
        })
    }

    /// out (d) = Σ_i of the first n columns of the d × n column-major matrix at `m`: a gemm
    /// with the ones vector, a fixed-order reduction on any backend.
    pub(super) fn column_sums(&mut self, m: At, d: usize, out: At) -> Result<()> {
        let n = self.plan.n;
        self.gemm(Gemm {
            trans_a: false,
            trans_b: false,
            m: d,
            n: 1,
            k: n,
            alpha: T::ONE,
            a: m,
            lda: d,
            b: at(self.ones),
            ldb: n,
            beta: T::ZERO,
            c: out,
            ldc: d,
        })
    }
}

/// Partial sums the fused residual can write for any split of `n` rows into PDE and boundary
/// tiles.
fn max_tiles(n: usize) -> usize {
    n.div_ceil(mspinn_kernels::BLOCK) + 1
}
