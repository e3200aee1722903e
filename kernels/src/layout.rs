//! Where each row, tile and output element of the fused residual lives.
//!
//! Mirrors `residual_common.cuh` exactly: the CPU op and the CUDA kernel must agree on every
//! offset and on the reduction order, so both are written down once here and once there.

/// Rows per reduction tile and threads per CUDA block. Fixed (not tuned per launch) so the
/// partial sums, and therefore the loss, are the same bits whatever the grid size or device count.
pub const BLOCK: usize = 256;

/// Rows of the packed constants tensor (5, N), in order.
pub const CONST_ROWS: [&str; 5] = ["c0", "c1", "c2", "g", "w"];
/// Rows of the stacked jets tensor (3, N), in order.
pub const JET_ROWS: [&str; 3] = ["u", "u'", "u''"];

/// Which per-row outputs the forward writes besides the (always written) tile partial sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Outputs {
    /// r_i, N elements.
    pub residual: bool,
    /// w_i ½ r_i², N elements.
    pub half_squares: bool,
}

impl Outputs {
    /// Only the partial sums: what a training step needs (least memory traffic).
    pub const LOSS: Self = Self {
        residual: false,
        half_squares: false,
    };
    /// Everything.
    pub const ALL: Self = Self {
        residual: true,
        half_squares: true,
    };
}

/// The tile decomposition of N rows whose first `n_pde` are PDE rows and the rest boundary rows.
/// Tiles never straddle the two segments, so the PDE and boundary losses are sums of disjoint
/// partials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiles {
    pub n: usize,
    pub n_pde: usize,
    pub tiles_pde: usize,
    pub n_tiles: usize,
}

impl Tiles {
    /// `n_pde ≤ n` is the caller's to check (the ops do, with a message).
    pub fn new(n: usize, n_pde: usize) -> Self {
        let tiles_pde = n_pde.div_ceil(BLOCK);
        Self {
            n,
            n_pde,
            tiles_pde,
            n_tiles: tiles_pde + (n - n_pde).div_ceil(BLOCK),
        }
    }

    /// Rows [start, end) of tile `tile`.
    pub fn range(&self, tile: usize) -> (usize, usize) {
        if tile < self.tiles_pde {
            let start = tile * BLOCK;
            (start, (start + BLOCK).min(self.n_pde))
        } else {
            let start = self.n_pde + (tile - self.tiles_pde) * BLOCK;
            (start, (start + BLOCK).min(self.n))
        }
    }

    pub fn tile_of(&self, row: usize) -> usize {
        if row < self.n_pde {
            row / BLOCK
        } else {
            self.tiles_pde + (row - self.n_pde) / BLOCK
        }
    }

    /// Offsets of r, e and the partials in the forward's flat output, and its length.
    pub fn output_offsets(&self, outputs: Outputs) -> OutputOffsets {
        let r = outputs.residual.then_some(0);
        let e_at = if outputs.residual { self.n } else { 0 };
        let e = outputs.half_squares.then_some(e_at);
        let partials = e_at + if outputs.half_squares { self.n } else { 0 };
        OutputOffsets {
            residual: r,
            half_squares: e,
            partials,
            len: partials + self.n_tiles,
        }
    }
}

/// See [`Tiles::output_offsets`]: `[r (N)?][e (N)?][partials (n_tiles)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOffsets {
    pub residual: Option<usize>,
    pub half_squares: Option<usize>,
    pub partials: usize,
    pub len: usize,
}
