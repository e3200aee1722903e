"""Fig. 2a of Carney, Gangal & Kim from Python: the NTK of a PINN for −(a(x/ε)u')' = f grows
like ε⁻².

One hidden layer of width 50 (tanh, N(0, 1) initialisation), N_c = 256 equispaced collocation
points on (−π, π), a = paper-4.1 = 1/(2.1 + 2 sin 2πy), λ = 1, the appendix scaling
K_uu = J_u J_uᵀ / N_c — the setting of ``mspinn reproduce`` (Fig. 2a) and ``mspinn ntk``'s
defaults. For ε from 1/10 to 1/100 (reciprocals evenly spaced) and 10 seeds, it plots ‖K_uu‖_F
and the three largest eigenvalues of K_uu (mean over seeds) against ε on log–log axes with an
ε⁻² guide, and prints the fitted slopes (the paper: −2).

    pip install ./crates/python matplotlib
    python examples/fig2a.py [--seeds 10] [--out fig2a.png]

About 20 s on one core.
"""

from __future__ import annotations

import argparse

import numpy as np

import mspinn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", default="fig2a.png")
    args = ap.parse_args()

    eps = 1 / np.linspace(10, 100, 10)  # 1/10, 1/20, …, 1/100 as in Fig. 2a
    fro = np.zeros((len(eps), args.seeds))
    lam = np.zeros((len(eps), args.seeds, 3))
    for i, e in enumerate(eps):
        problem = mspinn.Problem.for_ntk(e, coef="paper-4.1")
        for s in range(args.seeds):
            net = mspinn.Network([50], init="normal", seed=s)
            k = mspinn.ntk(net, problem, nc=256, lam=1.0)
            fro[i, s] = k.k_uu_fro
            lam[i, s] = k.k_uu_eig_top
        print(f"eps = 1/{1 / e:.0f}: ‖K_uu‖_F = {fro[i].mean():.4e}, λ1 = {lam[i, :, 0].mean():.4e}")

    for name, y in [("‖K_uu‖_F", fro.mean(1)), ("λ1(K_uu)", lam[:, :, 0].mean(1))]:
        slope = np.polyfit(np.log(eps), np.log(y), 1)[0]
        print(f"fit: {name} ∝ ε^{slope:.3f}  (paper: ε^-2)")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(eps, fro.mean(1), "o-", label=r"$\|K_{uu}\|_F$")
    for j in range(3):
        ax.loglog(eps, lam[:, :, j].mean(1), "s-", ms=4, label=rf"$\lambda_{j + 1}(K_{{uu}})$")
    ax.loglog(eps, fro.mean(1)[0] * (eps[0] / eps) ** 2, "k--", label=r"$\propto \varepsilon^{-2}$")
    ax.set_xlabel(r"$\varepsilon$")
    ax.set_ylabel(r"$K_{uu}$")
    ax.set_title(f"NTK scaling (Fig. 2a), width 50, N(0,1), {args.seeds} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
