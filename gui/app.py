"""``streamsep gui`` / ``streamsep-gui``: open the desktop app.

``--screenshot OUT.png --after SECONDS [--input-file IN.wav]`` runs the app fed from a file (or
the chosen input device) with no playback device, waits until the host has run for SECONDS,
saves a PNG of the window and exits (0 on success, 1 when the engine or the audio failed — the
PNG then shows the message).  Without a display it uses Qt's offscreen platform.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_T0 = time.perf_counter()
TABS = ("live", "file", "tune", "advanced")  # in the order of the window's tabs


def _since_start() -> float:
    """Seconds since this process started (Linux /proc; else since this module was imported)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _T0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamsep gui", description="streamsep desktop app (real-time speech enhancement)"
    )
    p.add_argument(
        "--preset",
        help="preset name (low-latency, balanced, quality) or .toml path; "
        "default: the settings remembered from the last run",
    )
    p.add_argument("--input", help="input device name (default: remembered / system default)")
    p.add_argument("--output", help="output device name; 'null' = no playback")
    p.add_argument("--input-file", help="feed this audio file in real time (looped) instead of a capture device")
    p.add_argument("--screenshot", metavar="OUT.png", help="save a PNG of the running window and exit")
    p.add_argument(
        "--after",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="with --screenshot: seconds of running audio before the capture (default 5)",
    )
    p.add_argument(
        "--colours",
        type=int,
        default=0,
        metavar="N",
        help="with --screenshot: reduce the PNG to an N-colour palette (Pillow; smaller files)",
    )
    p.add_argument(
        "--size",
        default="1280x800",
        help="window size WxH in pixels (default 1280x800; the README screenshots use 1024x600 and 1600x1000)",
    )
    p.add_argument("--open", metavar="FILE", help="open FILE in the File tab (processed once the engine is loaded)")
    p.add_argument("--tab", choices=TABS, default="live", help="tab shown first")
    p.add_argument("--settings", type=Path, help="settings file (default: ~/.config/streamsep/gui.toml)")
    p.add_argument("--no-remember", action="store_true", help="do not write settings back")
    p.add_argument("--no-dnsmos", action="store_true", help="turn the DNSMOS meter off (saves ~20 %% of a core)")
    return p


def _headless() -> bool:
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _quantize(path: Path, colours: int) -> bool:
    """Re-encode a PNG with an adaptive palette of ``colours`` colours (needs Pillow)."""
    try:
        from PIL import Image
    except ImportError:
        print("streamsep gui: --colours needs Pillow; PNG kept in full colour", file=sys.stderr)
        return True
    with Image.open(path) as im:
        pal = im.convert("RGB").quantize(max(2, min(256, colours)), method=Image.Quantize.FASTOCTREE)
    pal.save(path, optimize=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if args.screenshot and _headless() and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"streamsep gui: --size: expected WxH, got {args.size!r}", file=sys.stderr)
        return 2
    if args.input_file and not Path(args.input_file).is_file():
        print(f"streamsep gui: --input-file: {args.input_file}: no such file", file=sys.stderr)
        return 2

    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from gui import theme
    from gui.main_window import MainWindow, WindowOptions

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("streamsep")
    app.setApplicationName("streamsep")
    theme.apply_dark_palette(app)
    shot = bool(args.screenshot)
    opts = WindowOptions(
        preset=args.preset,
        input_device=args.input,
        output_device="null" if shot else args.output,
        input_file=args.input_file,
        remember=not (args.no_remember or shot),
        settings_file=args.settings,
        dnsmos=not args.no_dnsmos,
    )
    win = MainWindow(opts)
    win.resize(w, h)
    win.show()
    app.processEvents()
    torch_state = "imported" if "torch" in sys.modules else "not imported"
    print(
        f"streamsep gui: window shown after {_since_start():.2f} s ({time.process_time():.2f} s CPU; "
        f"torch {torch_state})",
        file=sys.stderr,
    )
    win.tabs.setCurrentIndex(TABS.index(args.tab))
    if args.open:
        win.booted.connect(lambda: win.file_panel.open_file(args.open))
    QTimer.singleShot(0, win.start)

    status = {"code": 0, "done": False}
    if shot:
        out = Path(args.screenshot)

        def capture(code: int) -> None:
            if status["done"]:
                return
            status["done"] = True
            app.processEvents()
            ok = win.grab().save(str(out), "PNG", 0)
            if ok and args.colours:
                ok = _quantize(out, args.colours)
            if ok:
                print(f"streamsep gui: saved {out} ({out.stat().st_size // 1024} KiB)", file=sys.stderr)
            else:
                print(f"streamsep gui: could not write {out}", file=sys.stderr)
            status["code"] = code if ok else 1
            win.close()
            app.quit()

        win.host_started.connect(lambda: QTimer.singleShot(int(args.after * 1000), lambda: capture(0)))
        win.host_failed.connect(lambda msg: QTimer.singleShot(1500, lambda: capture(1)))
        QTimer.singleShot(int((args.after + 60) * 1000), lambda: capture(1))  # never hang
    app.exec()
    win.shutdown()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
