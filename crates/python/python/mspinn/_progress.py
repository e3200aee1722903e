"""Progress bars for long calls: tqdm's (``tqdm.auto``: a widget in Jupyter, text in a terminal)
when tqdm is installed, else a one-line text bar that rewrites itself with ``\\r`` — which a
terminal and Jupyter's output area both render in place. The Rust side calls
``bar(done, total, message)`` from the calling thread about ten times a second, only when the
position moved."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, Union

ProgressArg = Union[bool, None, Callable[[int, int, str], object]]


class TextBar:
    """``[=====>    ] 1234/5000 12.3 s message`` on one line of ``stream`` (stderr)."""

    def __init__(self, desc: str, stream=None, width: int = 30) -> None:
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int, message: str) -> None:
        frac = done / total if total else 1.0
        fill = int(round(self.width * min(max(frac, 0.0), 1.0)))
        bar = "=" * fill + (">" if fill < self.width else "") + " " * (self.width - fill - 1)
        line = f"{self.desc} [{bar[: self.width]}] {done}/{total} {time.monotonic() - self.start:.1f} s {message}"
        self.stream.write("\r" + line[:120].ljust(120))
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class _Tqdm:
    """Adapts ``tqdm.auto.tqdm`` to the ``(done, total, message)`` calls."""

    def __init__(self, tqdm_cls, desc: str) -> None:
        self.bar = tqdm_cls(total=0, desc=desc, leave=True)

    def __call__(self, done: int, total: int, message: str) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class Reporter:
    """What a call hands to the Rust side (``callback``) and closes when it returns."""

    def __init__(self, progress: ProgressArg, desc: str) -> None:
        self._owned = None
        if progress is None or progress is False:
            self.callback: Optional[Callable[[int, int, str], object]] = None
        elif progress is True:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-not-found]

                self._owned = _Tqdm(tqdm, desc)
            except ImportError:
                self._owned = TextBar(desc)
            self.callback = self._owned
        elif callable(progress):
            self.callback = progress
        else:
            raise ValueError(f"progress: {progress!r}: expected True, False or a callable(done, total, message)")

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc) -> None:
        if self._owned is not None:
            self._owned.close()
