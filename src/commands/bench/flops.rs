//! The FLOP model. Conventions: a matmul (m×k)·(k×n) is 2mkn; every elementwise +, −, ×, ÷,
//! square, √ and tanh is 1 (an affine a·x + b is 2); copies, broadcasts and reductions to a
//! scalar are free except the loss sum (1 per row). Counts are per network of layer sizes
//! `dims` = [1, hidden…, 1] (N_p parameters) and per residual row; a step on N_c collocation
//! points runs N_c + N_b rows (N_b = 2 boundary rows).
//!
//! Jet forward, per row (three streams: value, d/dx, d²/dx²):
//! - layer 0 (input 1): only the value stream needs a matmul, 2·d₀·d₁ (z' = W₀ is a broadcast,
//!   z'' = 0); per unit 9: bias 1, tanh jets t, σ' = 1 − t², σ'' = −2tσ' (5), a' = σ'z' (1),
//!   a'' = σ''z'² (2);
//! - hidden layer k ≥ 1: three stream matmuls 3·2·d_k·d_{k+1}; per unit 11: bias 1, tanh jets 5,
//!   a' 1, a'' = σ''z'² + σ'z'' 4;
//! - output layer: 3·2·d_L·1 and the bias 1;
//! - residual and loss, per row 10: r = c₂u'' + c₁u' + c₀u − g (6), w·½r² (3), the sum (1).
//!
//! Loss + gradient ≈ 3× the forward (reverse mode: each matmul has two adjoint matmuls, dX and
//! dW, and each elementwise op about two adjoint ops). Adam adds 14 per parameter
//! (m: 3, v: 4, m̂, v̂, √, +ε̂, ×lr, ÷, θ − …: 7).
//!
//! Per-sample Jacobian row (crates/ntk jacobian.rs): the jet forward without the loss, the
//! outer products Σ_s z̄ˢ ⊗ hˢ (3 multiplies and 2 adds per weight, 5·d_k·d_{k+1} per layer),
//! and for each layer k ≥ 1 the three stream adjoints through W_k (3·2·d_k·d_{k+1}) and 26
//! elementwise ops per unit of layer k−1 (σ…σ''' 10, z̄ 10, z̄' 5, z̄'' 1).
//! Dense K_uu = J_u J_uᵀ: N_c rows + 2·N_c²·N_p (candle computes the full product).
//! Gram G = J^T J: N_c rows + N_c·N_p·(N_p + 1) (faer updates the lower triangle only: the
//! N_p(N_p+1)/2 entries at 2 FLOPs per row).
//! Fig. 2a adds two symmetric eigenvalue problems of order N_p (K_uu and K), ≈ (4/3)·N_p³ each
//! (the tridiagonal reduction; QR on the tridiagonal matrix is lower order).
//! Gemm: 2n³.

/// Elementwise ops per unit of layer 0 in the jet forward (see the module docs).
pub const FIRST_LAYER_UNIT: f64 = 9.0;
/// Elementwise ops per unit of a hidden layer k ≥ 1 in the jet forward.
pub const HIDDEN_LAYER_UNIT: f64 = 11.0;
/// Residual, weighted half-square and its share of the sum, per row.
pub const LOSS_PER_ROW: f64 = 10.0;
/// Adam's update per parameter.
pub const ADAM_PER_PARAM: f64 = 14.0;
/// Reverse sweep of the per-sample Jacobian, elementwise ops per unit of the layer below.
pub const JACOBIAN_REVERSE_UNIT: f64 = 26.0;

pub fn num_params(dims: &[usize]) -> f64 {
    dims.windows(2).map(|w| (w[0] * w[1] + w[1]) as f64).sum()
}

/// (matmul, elementwise) FLOPs of the jet forward for one row, without the loss.
pub fn jet_forward_row(dims: &[usize]) -> (f64, f64) {
    let last = dims.len() - 2;
    let mut mm = 0.0;
    let mut ew = 0.0;
    for (k, w) in dims.windows(2).enumerate() {
        let (i, o) = (w[0] as f64, w[1] as f64);
        if k == 0 {
            mm += 2.0 * i * o;
            ew += FIRST_LAYER_UNIT * o;
        } else if k < last {
            mm += 3.0 * 2.0 * i * o;
            ew += HIDDEN_LAYER_UNIT * o;
        } else {
            mm += 3.0 * 2.0 * i * o;
            ew += o;
        }
    }
    (mm, ew)
}

/// Loss and gradient over `rows` residual rows: 3 × (jet forward + loss).
pub fn loss_and_grad(dims: &[usize], rows: usize) -> f64 {
    let (mm, ew) = jet_forward_row(dims);
    3.0 * (mm + ew + LOSS_PER_ROW) * rows as f64
}

/// One Adam step: loss and gradient plus the update.
pub fn adam_step(dims: &[usize], rows: usize) -> f64 {
    loss_and_grad(dims, rows) + ADAM_PER_PARAM * num_params(dims)
}

/// One per-sample Jacobian row ∂r_i/∂θ.
pub fn jacobian_row(dims: &[usize]) -> f64 {
    let (mm, ew) = jet_forward_row(dims);
    let mut rev = 0.0;
    for (k, w) in dims.windows(2).enumerate() {
        let (i, o) = (w[0] as f64, w[1] as f64);
        rev += 5.0 * i * o;
        if k > 0 {
            rev += 3.0 * 2.0 * i * o + JACOBIAN_REVERSE_UNIT * i;
        }
    }
    mm + ew + rev
}

/// Dense K_uu: N_c Jacobian rows and the N_c(N_c + 1)/2 distinct entries of the symmetric
/// J_u J_uᵀ, 2 N_p flops each: the floor of the J Jᵀ formulation, which is what mspinn
/// computes on the CPU (a full product, as JAX's, does twice this).
pub fn dense_kuu(dims: &[usize], nc: usize) -> f64 {
    let n = nc as f64;
    n * jacobian_row(dims) + n * (n + 1.0) * num_params(dims)
}

/// Gram G_u = J_uᵀ J_u by lower-triangle rank updates (the N_b boundary rows' own tiny Gram
/// is left out).
pub fn gram(dims: &[usize], nc: usize) -> f64 {
    let (n, p) = (nc as f64, num_params(dims));
    n * jacobian_row(dims) + n * p * (p + 1.0)
}

/// One Fig. 2a record: the Gram (or dense) assembly and two order-N_p eigenproblems.
pub fn fig2a(dims: &[usize], nc: usize) -> f64 {
    let p = num_params(dims);
    gram(dims, nc) + 2.0 * (4.0 / 3.0) * p * p * p
}

/// One LM iteration's linear algebra on N rows: the residuals, the Jacobian, the normal matrix
/// (parameter space when N ≥ N_p: N·N_p² with the triangular product; sample space: N²·N_p)
/// and its Cholesky factorisation (m³/3 for the order m = min(N, N_p)).
pub fn lm_iteration(dims: &[usize], rows: usize) -> f64 {
    let (n, p) = (rows as f64, num_params(dims));
    let m = n.min(p);
    loss_and_grad(dims, rows) / 3.0 + n * jacobian_row(dims) + n * p * m + m * m * m / 3.0
}

pub fn gemm(n: usize) -> f64 {
    2.0 * (n as f64).powi(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny net 1 → 2 → 1 counted by hand from the rules in the module docs.
    #[test]
    fn flop_formulas_match_a_hand_count() {
        let dims = [1, 2, 1];
        assert_eq!(num_params(&dims), 7.0);
        // Forward: layer 0 matmul 2·1·2 = 4, output 3 streams · 2·2·1 = 12; elementwise: 9 per
        // unit of layer 0 (18) and the output bias (1).
        assert_eq!(jet_forward_row(&dims), (16.0, 19.0));
        // (16 + 19 + 10 loss) · 3 = 135 per row.
        assert_eq!(loss_and_grad(&dims, 10), 1350.0);
        // + 14 · 7 for Adam.
        assert_eq!(adam_step(&dims, 10), 1448.0);
        // Jacobian row: forward 35; outer products 5·1·2 + 5·2·1 = 20; back through W₁:
        // 6·2·1 = 12 and 26 · 2 units = 52.
        assert_eq!(jacobian_row(&dims), 119.0);
        // Dense: 3 rows + 3·4·7 (lower triangle); Gram: 3 rows + 3·7·8.
        assert_eq!(dense_kuu(&dims, 3), 357.0 + 84.0);
        assert_eq!(gram(&dims, 3), 357.0 + 168.0);
        assert_eq!(gemm(4), 128.0);
    }

    /// Two hidden layers exercise the hidden-layer rule (3 stream matmuls, 11 per unit).
    #[test]
    fn hidden_layer_rule() {
        let dims = [1, 3, 2, 1];
        // matmul: 2·1·3 + 6·3·2 + 6·2·1 = 6 + 36 + 12; elementwise 9·3 + 11·2 + 1.
        assert_eq!(jet_forward_row(&dims), (54.0, 50.0));
        // Jacobian: 104 + 5·(3 + 6 + 2) + (36 + 26·3) + (12 + 26·2).
        assert_eq!(jacobian_row(&dims), 104.0 + 55.0 + 114.0 + 64.0);
        // The paper's 4×40 network has 5041 parameters.
        assert_eq!(num_params(&[1, 40, 40, 40, 40, 1]), 5041.0);
    }
}
