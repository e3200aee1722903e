"""The NTK against an independent computation in numpy: the network's u, u', u'' written out by
hand for one tanh layer, the residual Jacobian by central differences in θ, and
K = J Jᵀ D with D = diag(1/N_c, …, λ/N_b, …) (appendix A) — sharing nothing with the Rust
Jacobian but the parameter vector's layout, which the test pins down too."""

from __future__ import annotations

import numpy as np
import pytest

import mspinn

TWO_PI = 2 * np.pi


def a_paper41(y):
    """paper-4.1: a(y) = 1/(2.1 + 2 sin 2πy), and a'(y)."""
    s = 2.1 + 2 * np.sin(TWO_PI * y)
    return 1 / s, -2 * TWO_PI * np.cos(TWO_PI * y) / s**2


def jets(theta, width, x):
    """u, u', u'' of u(x) = Σ_j v_j tanh(w_j x + b_j) + c, θ = (w, b, v, c) in mspinn's order
    (layer by layer, weight row-major then bias)."""
    w, b = theta[:width], theta[width : 2 * width]
    v, c = theta[2 * width : 3 * width], theta[3 * width]
    t = np.tanh(np.outer(x, w) + b)
    s2 = 1 - t**2
    return t @ v + c, (s2 * w) @ v, (-2 * t * s2 * w**2) @ v


def residuals(theta, width, x, xb, eps):
    """Darcy rows r = c2 u'' + c1 u' − f (c2 = −a(x/ε), c1 = −a'(x/ε)/ε, f = 1 as Problem.for_ntk
    has it) and the Dirichlet rows u(±π) − 0."""
    u, du, d2u = jets(theta, width, x)
    a, da = a_paper41(x / eps)
    r_pde = -a * d2u - da / eps * du - 1.0
    ub, _, _ = jets(theta, width, xb)
    return np.concatenate([r_pde, ub])


@pytest.mark.parametrize("scaling", ["appendix", "unscaled"])
def test_ntk_equals_finite_difference_jacobian_products(scaling):
    width, seed, eps, nc, lam = 8, 4, 1 / 4, 20, 3.0  # N_c = 20 < N_p = 25: the dense kernel
    net = mspinn.Network([width], init="normal", seed=seed)
    problem = mspinn.Problem.for_ntk(eps)
    theta = net.parameters()
    assert theta.shape == (3 * width + 1,)
    x = problem.collocation(nc)
    xb = np.array(problem.domain)

    # The hand-written jets are the network's (this pins down the parameter layout).
    u, du, d2u = net.predict(x)
    for mine, theirs in zip(jets(theta, width, x), (u, du, d2u)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)

    h = 1e-6
    cols = []
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        cols.append((residuals(theta + e, width, x, xb, eps) - residuals(theta - e, width, x, xb, eps)) / (2 * h))
    jac = np.stack(cols, axis=1)
    if scaling == "appendix":
        d = np.concatenate([np.full(nc, 1 / nc), np.full(2, lam / 2)])
    else:
        d = np.ones(nc + 2)
    want = jac @ jac.T * d[None, :]

    got = mspinn.ntk(net, problem, nc=nc, lam=lam, scaling=scaling, full_spectrum=True)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got.k, want, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(got.k_ub, want[:nc, nc:], rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(got.k_bu, want[nc:, :nc], rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(got.k_bb, want[nc:, nc:], rtol=0, atol=1e-6 * scale)
    # The reported norms and spectra are those of these matrices.
    kuu = want[:nc, :nc]
    assert got.k_uu_fro == pytest.approx(np.linalg.norm(kuu), rel=1e-6)
    assert got.k_fro == pytest.approx(np.linalg.norm(want), rel=1e-6)
    assert got.k_uu_trace == pytest.approx(np.trace(kuu), rel=1e-6)
    eig = np.sort(np.linalg.eigvalsh(kuu))[::-1]
    np.testing.assert_allclose(got.k_uu_eig_top, eig[:3], rtol=1e-6)
    # K is similar to the symmetric D^½ J Jᵀ D^½: its eigenvalues.
    sq = np.sqrt(d)
    eig_k = np.sort(np.linalg.eigvalsh(sq[:, None] * (jac @ jac.T) * sq[None, :]))[::-1]
    np.testing.assert_allclose(got.k_eig_top, eig_k[:3], rtol=1e-6)
    assert got.k_uu_spectrum is not None and got.k_uu_spectrum.shape == (nc,)
    np.testing.assert_allclose(got.k_uu_spectrum[:5], eig[:5], rtol=1e-6)


def test_the_gram_method_reports_the_dense_kernels_numbers():
    # N_c > N_p: the N_p × N_p Gram matrix, no N × N array, the same norms and eigenvalues.
    net = mspinn.Network([5], init="normal", seed=2)
    problem = mspinn.Problem.for_ntk(1 / 8)
    dense = mspinn.ntk(net, problem, nc=64, method="dense")
    gram = mspinn.ntk(net, problem, nc=64)
    assert gram.method == "gram" and gram.k is None and gram.k_uu is None
    assert gram.k_uu_fro == pytest.approx(dense.k_uu_fro, rel=1e-10)
    np.testing.assert_allclose(gram.k_uu_eig_top, dense.k_uu_eig_top, rtol=1e-9)
