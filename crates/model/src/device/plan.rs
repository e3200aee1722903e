//! What the device step allocates, and where the parameters sit in the flat buffer: plain
//! functions of the architecture and the row count, so the memory plan is tested without a
//! device and a request that cannot fit is refused before anything is allocated.

use mspinn_kernels::Tiles;

/// The buffers of one network on n rows (counts of values; f32 or f64 each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepPlan {
    /// [1, hidden…, 1].
    pub dims: Vec<usize>,
    /// Rows (PDE then boundary) and PDE rows.
    pub n: usize,
    pub n_pde: usize,
    /// (weight, bias) offsets of each affine layer in the flat parameter order (W_0, b_0, …).
    pub offsets: Vec<(usize, usize)>,
    /// N_p.
    pub n_params: usize,
    /// Pre-activation streams of affine layers 1.. (3·n·d_{l+1}); the last is the (3, n) jets.
    pub z_len: Vec<usize>,
    /// Activation streams (3·n·d) and σ', σ'' (2·n·d) of each hidden layer.
    pub a_len: Vec<usize>,
    pub s_len: Vec<usize>,
    /// Each of the two adjoint buffers: 3·n·max width.
    pub bar_len: usize,
    /// Reduction tiles of the fused residual.
    pub n_tiles: usize,
}

impl StepPlan {
    pub fn new(dims: &[usize], n: usize, n_pde: usize) -> Self {
        let nl = dims.len() - 1;
        let mut offsets = Vec::with_capacity(nl);
        let mut off = 0;
        for w in dims.windows(2) {
            offsets.push((off, off + w[0] * w[1]));
            off += w[0] * w[1] + w[1];
        }
        Self {
            dims: dims.to_vec(),
            n,
            n_pde,
            offsets,
            n_params: off,
            z_len: (1..nl).map(|l| 3 * n * dims[l + 1]).collect(),
            a_len: (0..nl - 1).map(|l| 3 * n * dims[l + 1]).collect(),
            s_len: (0..nl - 1).map(|l| 2 * n * dims[l + 1]).collect(),
            bar_len: 3 * n * dims.iter().copied().max().unwrap_or(1),
            n_tiles: Tiles::new(n, n_pde).n_tiles,
        }
    }

    /// Every value the step keeps on the device: parameters, gradient and the two Adam moments
    /// (4 N_p), the points and their constants (6 n), the streams, adjoints, per-row terms of
    /// layer 0 (2·n·d_1), the ones vector (n) and the partial sums. Checked arithmetic: None
    /// where it overflows.
    pub fn values(&self) -> Option<u128> {
        let u = |v: usize| v as u128;
        let mut total = 4 * u(self.n_params) + 7 * u(self.n) + u(self.n_tiles);
        for v in self.z_len.iter().chain(&self.a_len).chain(&self.s_len) {
            total = total.checked_add(u(*v))?;
        }
        total
            .checked_add(2 * u(self.bar_len))?
            .checked_add(2 * u(self.n) * u(self.dims[1]))
    }

    /// [`Self::values`] in bytes for values of `size` bytes.
    pub fn bytes(&self, size: usize) -> Option<u128> {
        self.values()?.checked_mul(size as u128)
    }
}

/// The most rows whose step (plus, with `jacobian`, its n × N_p Jacobian) fits in `bytes` for
/// values of `size` bytes; 0 if not even one row fits. The step's memory grows monotonically
/// with n, so a bisection over n finds it exactly.
pub fn max_rows(dims: &[usize], bytes: u128, size: usize, jacobian: bool) -> usize {
    let need = |n: usize| -> Option<u128> {
        let p = StepPlan::new(dims, n, n);
        let jac = if jacobian {
            (n as u128).checked_mul(p.n_params as u128)?
        } else {
            0
        };
        p.values()?.checked_add(jac)?.checked_mul(size as u128)
    };
    let fits = |n: usize| need(n).is_some_and(|b| b <= bytes);
    if !fits(1) {
        return 0;
    }
    let (mut lo, mut hi) = (1usize, 2usize);
    while fits(hi) {
        lo = hi;
        match hi.checked_mul(2) {
            Some(h) if h < 1 << 48 => hi = h,
            _ => return lo,
        }
    }
    // fits(lo), !fits(hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Threads per block and blocks of a grid-stride launch over `len` elements, capped at
/// `max_blocks` (a few waves of the GPU's multiprocessors): every element is visited exactly
/// once whatever the grid, so the cap only trades launch width for loop trips.
pub fn grid_stride(len: usize, block: usize, max_blocks: usize) -> (usize, usize) {
    let blocks = len.div_ceil(block.max(1)).clamp(1, max_blocks.max(1));
    (block.max(1), blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_the_flat_parameter_order() {
        let p = StepPlan::new(&[1, 40, 40, 1], 1000, 998);
        assert_eq!(p.offsets, vec![(0, 40), (80, 1680), (1720, 1760)]);
        assert_eq!(p.n_params, 1761);
        assert_eq!(p.z_len, vec![3 * 1000 * 40, 3 * 1000]);
        assert_eq!((p.a_len.len(), p.s_len.len()), (2, 2));
        assert_eq!(
            p.n_tiles,
            4 + 1,
            "998 PDE rows in 4 tiles, the 2 boundary rows in one"
        );
    }

    #[test]
    fn memory_counts_every_buffer_and_never_overflows() {
        let p = StepPlan::new(&[1, 10, 1], 8, 6);
        // 4·31 + 7·8 + tiles 2 + z (3·8) + a (240) + s (160) + bars 2·240 + layer-0 terms 160.
        assert_eq!(p.values(), Some(124 + 56 + 2 + 24 + 240 + 160 + 480 + 160));
        assert_eq!(p.bytes(8), p.values().map(|v| 8 * v));
        let huge = StepPlan::new(&[1, 1 << 20, 1 << 20, 1], 1 << 40, 1 << 40);
        assert!(huge.bytes(8).is_some_and(|b| b > 1u128 << 60) || huge.bytes(8).is_none());
    }

    #[test]
    fn max_rows_is_the_largest_plan_that_fits() {
        let dims = [1, 40, 40, 40, 40, 1];
        for (bytes, jac) in [(1u128 << 30, false), (80u128 << 30, false), (1 << 30, true)] {
            let n = max_rows(&dims, bytes, 8, jac);
            let size = |n: usize| {
                let p = StepPlan::new(&dims, n, n);
                (p.values().unwrap() + if jac { (n * p.n_params) as u128 } else { 0 }) * 8
            };
            assert!(
                n > 0 && size(n) <= bytes && size(n + 1) > bytes,
                "{bytes} {jac}: {n}"
            );
        }
        // Per row of the 4×40 step: z 3·(3·40 + 1), a 4·3·40, σ' σ'' 4·2·40, two adjoints
        // 2·3·40, layer-0 terms 2·40, points and constants 7: 1490 values, 11.9 KB in f64. An
        // H100's 80 GiB hold N = 10⁶ with room to spare, and stop short of 7.3·10⁶.
        let n = max_rows(&dims, 80 << 30, 8, false);
        assert!((7_000_000..7_300_000).contains(&n), "{n}");
        assert_eq!(max_rows(&dims, 100, 8, false), 0);
    }

    #[test]
    fn grid_stride_covers_every_element_once() {
        for (len, block, cap) in [
            (0, 256, 132),
            (1, 256, 132),
            (1_000_000, 256, 528),
            (513, 256, 8),
        ] {
            let (b, g) = grid_stride(len, block, cap);
            assert!(g >= 1 && g <= cap && b == block);
            let mut seen = vec![0u8; len];
            for t in 0..b * g {
                let mut i = t;
                while i < len {
                    seen[i] += 1;
                    i += b * g;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "len {len}");
        }
    }
}
