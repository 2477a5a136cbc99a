"""(g) emulator render speed against `ffmpeg -preset ultrafast`, in one run.

Both sides make the same kind of file: H.264 (libx264, preset ultrafast, yuv420p) in MP4, from
frames they draw themselves. The baseline is FFmpeg drawing its `testsrc2` pattern and encoding
it: the `ffmpeg` command when one is installed, else the same filter graph and encoder run
in-process through PyAV (the output says which). Runs alternate between the two sides so a
noisy machine slows both alike; each figure is the median of the runs, as x real time
(seconds of video made per second of wall time).

    python bench/bench_render.py [--quick]    # 8 s clips at 1280x720 and 1920x1080, 3 runs each;
                                              # --quick: one short run at 320x180 (CI smoke)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

from _common import QUICK, median, report
from sora_mcp.emulator.render import RenderSpec, render_video
from sora_mcp.media.video import probe

PROMPT = "A paper boat drifts down a rainy street at night, low angle, neon reflections in the puddles"
FPS = 24


def emulator(size: tuple[int, int], seconds: float, dest: Path) -> float:
    spec = RenderSpec(
        prompt=PROMPT, width=size[0], height=size[1], seconds=seconds, video_id="video_bench", fps=FPS
    )
    start = time.perf_counter()
    render_video(spec, dest)
    elapsed = time.perf_counter() - start
    info = probe(dest)  # the figure counts only if the file is what was asked for
    assert (info.width, info.height, info.frames) == (*size, round(seconds * FPS)), info
    return elapsed


def ffmpeg_command(size: tuple[int, int], seconds: float, dest: Path) -> float:
    command = [
        "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
        "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={FPS}:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mp4", str(dest),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)  # a fixed command line
    return time.perf_counter() - start


def ffmpeg_in_process(size: tuple[int, int], seconds: float, dest: Path) -> float:
    start = time.perf_counter()
    source = av.open(f"testsrc2=size={size[0]}x{size[1]}:rate={FPS}:duration={seconds}", format="lavfi")
    with source, av.open(str(dest), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return time.perf_counter() - start


GOALS = {(1280, 720): 10.0, (1920, 1080): 4.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short run at a small size (smoke test)")
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length (default 8)")
    parser.add_argument("--runs", type=int, default=3, help="runs per side and size (default 3)")
    args = parser.parse_args()
    sizes, seconds, runs = [(1280, 720), (1920, 1080)], args.seconds, args.runs
    if QUICK:
        sizes, seconds, runs = [(320, 180)], 1.0, 1
    if shutil.which("ffmpeg"):
        baseline, name = ffmpeg_command, "ffmpeg -preset ultrafast (the ffmpeg command)"
    else:
        baseline, name = (
            ffmpeg_in_process,
            "ffmpeg -preset ultrafast (no ffmpeg command: its encoder via PyAV)",
        )
    rows = [("baseline", name), ("clips", f"{seconds:g} s at {FPS} fps, median of {runs} alternating runs")]
    with tempfile.TemporaryDirectory(prefix="sora-mcp-bench-") as scratch:
        emulator(sizes[0], 0.25, Path(scratch) / "warm.mp4")  # fonts and codecs loaded once, not timed
        for size in sizes:
            ours, theirs = [], []
            for run in range(runs):
                ours.append(seconds / emulator(size, seconds, Path(scratch) / f"ours{run}.mp4"))
                theirs.append(seconds / baseline(size, seconds, Path(scratch) / f"theirs{run}.mp4"))
            mine, base = median(ours), median(theirs)
            goal = f" (goal >= {GOALS[size]:g}x)" if size in GOALS else ""
            rows.append(
                (
                    f"{size[0]}x{size[1]} emulator / baseline",
                    f"{mine:.1f}x / {base:.1f}x real time = {mine / base:.2f}x{goal}",
                )
            )
    report("(g) emulator render speed vs ffmpeg -preset ultrafast", rows)


if __name__ == "__main__":
    main()
