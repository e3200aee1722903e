//! The neural tangent kernel of the PINN residuals (Lemma 3.1 and appendix A of the paper).
//!
//! With J_u = ∂r_pde/∂θ (N_c × N_p), J_b = ∂r_b/∂θ (N_b × N_p) and the loss weights
//! D = diag(1/N_c …, λ/N_b …) of eq. (7), the residual ODE dy/dt = −K y has K = J J^T D, i.e.
//! K_uu = (1/N_c) J_u J_u^T, K_ub = (λ/N_b) J_u J_b^T, K_bu = (1/N_c) J_b J_u^T,
//! K_bb = (λ/N_b) J_b J_b^T. The Lemma's statement drops λ/N_b on K_bb; the appendix derivation has
//! it, and so does mspinn ([`Scaling::Appendix`]). Section 4.1 writes K_uu without 1/N_c
//! ([`Scaling::Unscaled`]). Every report names its convention.

pub mod analysis;
pub mod dense;
pub mod error;
pub mod gram;
pub mod memory;
pub mod products;
pub mod scaling;
pub mod spectrum;

pub use analysis::{analyse, Method, NtkOptions, NtkReport};
pub use dense::DenseNtk;
pub use error::NtkError;
pub use gram::{GramAccumulator, ParamGram};
pub use products::{mirror_lower, syrk_lower, Side};
pub use scaling::Scaling;
pub use spectrum::{nonzero_threshold, Spectrum};

pub type Result<T> = std::result::Result<T, NtkError>;
