"""The package's contracts beyond the numbers: weights files round-trip, the reference solver's
arrays, predictions, progress reports, the GIL released during long calls, Ctrl-C stopping a
training run cleanly, and the package under test being the pip-installed wheel."""

from __future__ import annotations

import os
import pathlib
import signal
import sys
import threading
import time

import numpy as np
import pytest

import mspinn
from conftest import ROOT, bits


def test_save_load_round_trip(tmp_path):
    net = mspinn.Network([7, 5], activation="softplus", init="glorot-uniform", seed=9, dtype="f32")
    path = tmp_path / "w.safetensors"
    net.save(path)
    back = mspinn.Network.load(path)
    assert (back.widths, back.activation, back.init, back.seed, back.dtype) == ([7, 5], "softplus", "glorot-uniform", 9, "f32")
    assert np.array_equal(bits(back.parameters()), bits(net.parameters()))
    wide = mspinn.Network.load(path, dtype="f64")
    assert wide.dtype == "f64"
    assert np.array_equal(bits(wide.parameters()), bits(net.parameters()))
    x = np.linspace(-3, 3, 11)
    assert np.array_equal(bits(back(x)), bits(net(x)))


def test_seeded_networks_and_parameters():
    a, b = mspinn.Network([8], seed=1), mspinn.Network([8], seed=1)
    assert np.array_equal(bits(a.parameters()), bits(b.parameters()))
    assert not np.array_equal(a.parameters(), mspinn.Network([8], seed=2).parameters())
    c = a.copy()
    c.set_parameters(np.zeros(a.num_params))
    assert np.all(c(np.linspace(0, 1, 4)) == 0.0)
    assert np.any(a.parameters() != 0), "copy() shares no parameters"


def test_predict_gives_u_and_its_derivatives():
    net = mspinn.Network([16, 16], seed=3)
    x = np.linspace(-2, 2, 401)
    u, du, d2u = net.predict(x)
    assert u.shape == du.shape == d2u.shape == x.shape
    assert np.array_equal(bits(u), bits(net(x))) or np.allclose(u, net(x), rtol=1e-14)
    h = x[1] - x[0]
    np.testing.assert_allclose(np.gradient(u, h)[1:-1], du[1:-1], atol=1e-3 * np.abs(du).max())
    np.testing.assert_allclose(np.gradient(du, h)[1:-1], d2u[1:-1], atol=1e-3 * np.abs(d2u).max())
    # Lists work too, and strided arrays are read correctly.
    assert np.allclose(net([0.5, 1.0])[1], net(np.array([1.0]))[0])
    assert np.array_equal(net(x[::2]), net(np.ascontiguousarray(x[::2])))


def test_solve_returns_the_exact_solution_and_u_bar():
    p = mspinn.Problem.preset("twoscale-darcy", eps="1/16")
    s = mspinn.solve(p, points=301)
    assert s.x.shape == s.u.shape == s.du.shape == (301,)
    assert s.x[0] == -np.pi and s.x[-1] == np.pi
    eps = 1 / 16
    exact = np.sin(2 * s.x) + eps * np.sin(s.x / eps) - eps / np.pi * np.sin(np.pi / eps) * s.x
    np.testing.assert_allclose(s.u, exact, atol=1e-12)
    assert s.u_bar is not None and s.u_bar.shape == (301,)
    # A problem without a closed form: the quadrature solver, which satisfies the boundary data.
    q = mspinn.Problem("darcy", "1", eps=0.25, coefficient="paper-4.1", boundary=(0, "1/2"))
    sq = mspinn.solve(q, points=101)
    assert sq.u[0] == pytest.approx(0.0, abs=1e-12) and sq.u[-1] == pytest.approx(0.5, abs=1e-12)
    # ā = 1/⟨1/a⟩ = 1/⟨2.1 + 2 sin 2πy⟩ = 1/2.1 for paper-4.1.
    assert q.homogenized_coefficient == pytest.approx(1 / 2.1, rel=1e-9)


def test_training_reduces_the_loss_and_reports_progress():
    p = mspinn.Problem("poisson", "sin(x)", exact="sin(x)")
    calls = []
    r = mspinn.train(p, "300@1e-2,lbfgs:50", widths=[10], nc=32, log_every=25, progress=lambda *a: calls.append(a))
    assert r.history.loss[-1] < 1e-2 * r.history.loss[0]
    assert r.history.iteration[0] == 0 and r.history.iteration[-1] == r.iterations
    assert set(r.history.optimizer) == {"adam", "l-bfgs"} or set(r.history.optimizer) >= {"adam"}
    assert len(r.errors.iteration) == len(r.history.iteration)
    assert r.metrics is not None and r.metrics["rel_l2"][0] < 0.1
    assert calls, "the progress callable was never called"
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][1] == 350 and calls[-1][0] == 350
    # The input network is not trained in place.
    net = mspinn.Network([10], seed=0)
    before = net.parameters()
    mspinn.train(p, "20@1e-2", network=net, nc=16, progress=False)
    assert np.array_equal(net.parameters(), before)


def test_no_progress_bar_when_asked(capfd):
    p = mspinn.Problem("poisson", "sin(x)", exact="sin(x)")
    mspinn.train(p, "200@1e-3", widths=[8], nc=16, progress=False)
    assert capfd.readouterr().err == ""
    mspinn.train(p, "200@1e-3", widths=[8], nc=16, progress=True)
    assert "200/200" in capfd.readouterr().err


def test_the_gil_is_released_while_training():
    p = mspinn.Problem("poisson", "sin(x)", exact="sin(x)")
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    t = threading.Thread(target=tick)
    t.start()
    try:
        start = time.monotonic()
        mspinn.train(p, "4000@1e-3", widths=[32, 32], nc=256, progress=False)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        t.join()
    during = [x for x in ticks if start < x < start + elapsed]
    assert elapsed > 0.3, "training too short to tell"
    # A thread that needs the GIL ran during the call: had the call held the GIL, it could not
    # have ticked at all (Rust code gives no switch points). A loaded machine ticks slower, so
    # only a handful of ticks is asked for.
    assert len(during) >= 5, f"{len(during)} ticks in {elapsed:.2f} s"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT by os.kill")
def test_ctrl_c_stops_training_cleanly():
    p = mspinn.Problem("poisson", "sin(x)", exact="sin(x)")
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        mspinn.train(p, "100000000@1e-3", widths=[16], nc=64, progress=False)
    assert time.monotonic() - start < 10
    # The interpreter and the package carry on.
    r = mspinn.train(p, "10@1e-3", widths=[4], nc=8, progress=False)
    assert r.iterations == 10


def test_the_package_is_the_installed_wheel():
    # `pip install ./crates/python` put the native module into site-packages (not this tree).
    core = pathlib.Path(mspinn._core.__file__).resolve()
    assert ROOT / "crates" not in core.parents
    assert any(p.name in ("site-packages", "dist-packages") for p in core.parents)
    assert (pathlib.Path(mspinn.__file__).parent / "py.typed").is_file()
    assert (pathlib.Path(mspinn.__file__).parent / "_core.pyi").is_file()
