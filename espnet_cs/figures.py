"""Matplotlib for writing figure files, with a font that has Chinese characters.

The font is Debian's ``fonts-wqy-microhei`` (installed by tools/install.sh); without it,
Chinese labels fall back to boxes but the figures are still written.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams["font.sans-serif"] = ["WenQuanYi Micro Hei", *plt.rcParams["font.sans-serif"]]

__all__ = ["plt"]
