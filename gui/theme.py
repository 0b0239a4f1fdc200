"""Colours and the dark Fusion palette shared by every widget of the app."""

from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

BG = "#1e2127"  # window background
PANEL = "#262a31"  # group boxes, plots
BASE = "#16181d"  # text fields, meter troughs
TEXT = "#e6e6e6"
MUTED = "#9aa3ad"
ACCENT = "#4fa3ff"
INPUT = "#f0a030"  # everything about the input signal
OUTPUT = "#36c28a"  # everything about the processed output
WARN = "#e0b030"
ERROR = "#e05050"
OK = "#36c28a"
#: one colour per refinement step (ratio plot)
STEP_COLOURS = ["#4fa3ff", "#f0a030", "#36c28a", "#d070e0", "#e05050", "#e0e050", "#60d0d0", "#b0b0b0"]


def apply_dark_palette(app: QApplication) -> None:
    """Fusion style with a dark palette and matching pyqtgraph defaults."""
    import pyqtgraph as pg

    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BG,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#000000",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: MUTED,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b727b"))
    app.setPalette(pal)
    app.setStyleSheet(
        "QGroupBox { border: 1px solid #3a3f47; border-radius: 4px; margin-top: 14px; padding-top: 4px; }"
        "QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #9aa3ad; }"
        "QToolTip { color: #e6e6e6; background: #262a31; border: 1px solid #3a3f47; }"
    )
    pg.setConfigOptions(background=PANEL, foreground=TEXT, antialias=True)


def dark_figure(fig) -> None:
    """Recolour a drawn matplotlib ``Figure`` for the dark theme (the Tune tab's canvas).

    Backgrounds become the panel colours, text and axes light; black lines, markers and edges (the
    plot's Pareto fronts and rings, drawn for a white page) become the text colour."""
    from matplotlib.colors import to_rgba

    def light(colour):
        rgba = to_rgba(colour)
        return TEXT if rgba[3] > 0 and max(rgba[:3]) < 0.15 else colour

    fig.set_facecolor(PANEL)
    for text in fig.texts:
        text.set_color(light(text.get_color()))
    for ax in fig.axes:
        ax.set_facecolor(BASE)
        for spine in ax.spines.values():
            spine.set_color(MUTED)
        ax.tick_params(colors=MUTED, which="both")
        for label in (ax.xaxis.label, ax.yaxis.label, ax.title):
            label.set_color(TEXT)
        for line in ax.get_lines():
            line.set_color(light(line.get_color()))
            line.set_markeredgecolor(light(line.get_markeredgecolor()))
        for coll in ax.collections:
            edges = coll.get_edgecolor()
            if len(edges):
                coll.set_edgecolor([light(tuple(e)) for e in edges])
        for text in ax.texts:
            text.set_color(light(text.get_color()))
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(PANEL)
            legend.get_frame().set_edgecolor(MUTED)
            for text in legend.get_texts():
                text.set_color(TEXT)
        ax.grid(color=MUTED, alpha=0.2)
