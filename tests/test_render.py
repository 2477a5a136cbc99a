"""The emulator's media: real H.264 clips, stills and joins, checked by decoding the files.

Sizes and durations are tiny so the whole module runs in a few seconds; H.264 is lossy, so
pictures are compared by mean absolute difference on a downscale, never pixel by pixel.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

from sora_mcp.emulator.render import (
    RenderSpec,
    concat_videos,
    render_spritesheet,
    render_thumbnail,
    render_video,
)
from sora_mcp.media.video import cut_clip, decode_frames, frame_at, probe, write_h264

W, H = 320, 180
PROMPT = "A paper boat drifts down a rainy street, low angle, neon reflections"


def spec(**overrides: object) -> RenderSpec:
    fields: dict[str, object] = {"prompt": PROMPT, "width": W, "height": H, "seconds": 2.0}
    fields.update(overrides)
    return RenderSpec(**fields)  # type: ignore[arg-type]


def rendered(tmp_path: Path, name: str = "clip.mp4", /, **overrides: object) -> Path:
    dest = tmp_path / name
    render_video(spec(**overrides), dest)
    return dest


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255) of two pictures shrunk to 64x36."""
    small = (64, 36)
    a = a.convert("RGB").resize(small, Image.Resampling.BOX)
    b = b.convert("RGB").resize(small, Image.Resampling.BOX)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def picture(size: tuple[int, int]) -> Image.Image:
    """A structured test image: a gradient with blocks, so a crop or a shift shows."""
    image = ImageOps.colorize(Image.linear_gradient("L").resize(size), (10, 30, 120), (250, 200, 40))
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 8, size[1] // 6, size[0] // 3, size[1] // 2), fill=(220, 20, 60))
    draw.ellipse((size[0] // 2, size[1] // 3, size[0] * 7 // 8, size[1] * 5 // 6), fill=(20, 200, 90))
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def solid_frames(
    colours: list[tuple[int, int, int]], size: tuple[int, int] = (64, 36)
) -> Iterator[Image.Image]:
    return (Image.new("RGB", size, colour) for colour in colours)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plain 2 s 320x180 clip shared by the read-only tests."""
    return rendered(tmp_path_factory.mktemp("clip"))


# --- render_video ------------------------------------------------------------------------------


def test_a_rendered_clip_has_exactly_the_asked_size_duration_and_frame_count(clip: Path) -> None:
    info = probe(clip)

    assert (info.width, info.height) == (W, H)
    assert info.frames == 48
    assert info.fps == 24
    assert info.seconds == pytest.approx(2.0, abs=1 / 24)
    assert info.codec == "h264"


@pytest.mark.parametrize(
    ("width", "height", "seconds", "fps", "frames"),
    [(180, 320, 1.0, 24, 24), (64, 36, 1.5, 6, 9), (1280, 720, 0.25, 24, 6)],
)
def test_any_even_size_and_rate_gives_round_seconds_times_fps_frames(
    tmp_path: Path, width: int, height: int, seconds: float, fps: int, frames: int
) -> None:
    dest = rendered(tmp_path, width=width, height=height, seconds=seconds, fps=fps)

    info = probe(dest)
    assert (info.width, info.height, info.frames) == (width, height, frames)
    assert info.seconds == pytest.approx(frames / fps, abs=1e-6)


def test_the_same_spec_renders_the_same_bytes(tmp_path: Path, clip: Path) -> None:
    again = rendered(tmp_path)

    assert again.read_bytes() == clip.read_bytes()


def test_case_and_punctuation_of_the_prompt_do_not_change_the_clip(tmp_path: Path, clip: Path) -> None:
    shouted = rendered(tmp_path, prompt=PROMPT.upper() + "!!!")

    assert difference(frame_at(shouted, 1.0), frame_at(clip, 1.0)) < 8  # caption text differs only


def test_different_prompts_give_visibly_different_frames(tmp_path: Path, clip: Path) -> None:
    other = rendered(tmp_path, prompt="A lighthouse on a cliff at sunset, seagulls circling")

    assert difference(frame_at(other, 1.0), frame_at(clip, 1.0)) > 20


def test_frames_move_over_time(clip: Path) -> None:
    assert difference(frame_at(clip, 0.0), frame_at(clip, 1.5)) > 3


def test_a_note_changes_the_look_of_the_same_prompt(tmp_path: Path, clip: Path) -> None:
    edited = rendered(tmp_path, note="edit: make it night")

    assert difference(frame_at(edited, 1.0), frame_at(clip, 1.0)) > 10


def test_characters_add_something_to_the_frames(tmp_path: Path, clip: Path) -> None:
    with_cast = rendered(tmp_path, characters=("Pixel", "Momo"))

    changed = [difference(frame_at(with_cast, t), frame_at(clip, t)) for t in (0.0, 0.5, 1.0, 1.5)]
    assert max(changed) > 1


def test_frame_zero_is_exactly_the_given_first_frame(tmp_path: Path) -> None:
    image = picture((W, H))

    dest = rendered(tmp_path, first_frame=png(image))

    assert difference(frame_at(dest, 0.0), image) < 4
    assert difference(frame_at(dest, 1.9), image) > difference(frame_at(dest, 0.0), image)
    assert probe(dest).frames == 48


def test_a_first_frame_of_another_shape_is_centre_cropped_to_the_size(tmp_path: Path) -> None:
    square = picture((400, 400))

    dest = rendered(tmp_path, first_frame=png(square))

    expected = ImageOps.fit(square, (W, H), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    assert difference(frame_at(dest, 0.0), expected) < 4
    assert difference(frame_at(dest, 0.0), square.resize((W, H))) > 10


@pytest.mark.parametrize(("width", "height"), [(321, 180), (320, 181), (0, 180), (-2, 180)])
def test_an_odd_or_empty_size_is_rejected_and_nothing_is_written(
    tmp_path: Path, width: int, height: int
) -> None:
    with pytest.raises(ValueError, match="even"):
        rendered(tmp_path, width=width, height=height)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"seconds": 0}, "positive"),
        ({"fps": 0}, "positive"),
        ({"first_frame": b"not an image"}, "first_frame"),
    ],
)
def test_a_bad_duration_rate_or_first_frame_is_rejected(
    tmp_path: Path, overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        rendered(tmp_path, **overrides)

    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_partial_file(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"previous")

    def frames() -> Iterator[Image.Image]:
        yield Image.new("RGB", (64, 36))
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_h264(dest, frames(), width=64, height=36, fps=24)

    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_frames_are_made_ahead_in_a_worker_that_ends_with_the_write(tmp_path: Path) -> None:
    def frames() -> Iterator[Image.Image]:
        for colour in range(0, 200, 10):
            yield Image.new("RGB", (64, 36), (colour, 0, 0))
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_h264(tmp_path / "clip.mp4", frames(), width=64, height=36, fps=24)

    assert write_h264(tmp_path / "ok.mp4", solid_frames([(9, 9, 9)] * 30), width=64, height=36, fps=24) == 30
    assert [t.name for t in threading.enumerate() if t.name == "sora-mcp-frames"] == []


# --- concat, cut, frames -----------------------------------------------------------------------


def test_concat_has_the_sum_of_durations_and_starts_with_the_first_part(tmp_path: Path) -> None:
    first = rendered(tmp_path, "a.mp4", first_frame=png(picture((W, H))))
    second = rendered(tmp_path, "b.mp4", prompt="A second shot", seconds=1.0)

    joined = tmp_path / "joined.mp4"
    concat_videos([first, second], joined)

    info = probe(joined)
    assert (info.width, info.height, info.codec) == (W, H, "h264")
    assert info.frames == 48 + 24
    assert info.seconds == pytest.approx(3.0, abs=1 / 24)
    assert difference(frame_at(joined, 0.0), frame_at(first, 0.0)) < 1
    assert difference(frame_at(joined, 2.5), frame_at(second, 0.5)) < 1
    assert sum(1 for _ in decode_frames(joined)) == 72


def test_concat_reencodes_parts_of_another_codec_to_h264(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.mp4"
    with av.open(str(foreign), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for index, image in enumerate(solid_frames([(200, 40, 40)] * 12, (W, H))):
            frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")  # type: ignore[no-untyped-call]
            frame.pts, frame.time_base = index, Fraction(1, 24)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    ours = rendered(tmp_path, "ours.mp4", seconds=1.0)

    joined = tmp_path / "joined.mp4"
    concat_videos([foreign, ours], joined)

    info = probe(joined)
    assert (info.codec, info.frames) == ("h264", 36)
    assert difference(frame_at(joined, 0.0), Image.new("RGB", (W, H), (200, 40, 40))) < 4


def test_concat_refuses_parts_of_different_sizes(tmp_path: Path) -> None:
    wide = rendered(tmp_path, "wide.mp4", seconds=0.5)
    tall = rendered(tmp_path, "tall.mp4", seconds=0.5, width=H, height=W)

    with pytest.raises(ValueError, match="frame size"):
        concat_videos([wide, tall], tmp_path / "joined.mp4")

    assert not (tmp_path / "joined.mp4").exists()


def test_cut_clip_gives_the_asked_length_from_the_asked_start(tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    colours = [(k * 5, 100, 200) for k in range(48)]
    write_h264(source, solid_frames(colours), width=64, height=36, fps=24)

    info = cut_clip(source, tmp_path / "cut.mp4", start=0.5, seconds=1.0)

    assert (info.width, info.height, info.frames, info.codec) == (64, 36, 24, "h264")
    assert info.seconds == pytest.approx(1.0, abs=1 / 24)
    assert difference(frame_at(tmp_path / "cut.mp4", 0.0), Image.new("RGB", (64, 36), colours[12])) < 4


def test_cut_clip_refuses_a_stretch_past_the_end(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(ValueError, match="inside"):
        cut_clip(clip, tmp_path / "cut.mp4", start=1.5, seconds=1.0)


def test_frame_at_none_is_the_last_frame_and_a_time_picks_its_frame(tmp_path: Path) -> None:
    video = tmp_path / "colours.mp4"
    colours = [(230, 30, 30)] * 24 + [(30, 230, 30)] * 23 + [(30, 30, 230)]
    write_h264(video, solid_frames(colours), width=64, height=36, fps=24)

    def near(image: Image.Image, colour: tuple[int, int, int]) -> bool:
        return difference(image, Image.new("RGB", image.size, colour)) < 6

    assert near(frame_at(video), (30, 30, 230))
    assert near(frame_at(video, 0.5), (230, 30, 30))
    assert near(frame_at(video, 1.0), (30, 230, 30))
    assert near(frame_at(video, 99.0), (30, 30, 230))


def test_probe_rejects_what_is_not_a_video(tmp_path: Path) -> None:
    still = tmp_path / "still.png"
    still.write_bytes(png(picture((64, 36))))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)

    for path in (still, junk):
        with pytest.raises(ValueError, match="not an MP4, MOV or WebM video"):
            probe(path)
    with pytest.raises(ValueError, match="cannot be opened"):
        probe(tmp_path / "missing.mp4")


# --- stills ------------------------------------------------------------------------------------


def test_the_thumbnail_is_a_webp_of_the_same_aspect_at_most_640_px(tmp_path: Path) -> None:
    wide = rendered(tmp_path, width=1280, height=720, seconds=0.25)
    small = rendered(tmp_path, "small.mp4")

    render_thumbnail(wide, tmp_path / "wide.webp")
    render_thumbnail(small, tmp_path / "small.webp")

    data = (tmp_path / "wide.webp").read_bytes()
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    with Image.open(tmp_path / "wide.webp") as image:
        assert image.size == (640, 360)
    with Image.open(tmp_path / "small.webp") as image:
        assert image.size == (W, H)


def test_the_spritesheet_is_a_jpeg_grid_of_evenly_spaced_frames(tmp_path: Path, clip: Path) -> None:
    render_spritesheet(clip, tmp_path / "sheet.jpg")

    data = (tmp_path / "sheet.jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    with Image.open(tmp_path / "sheet.jpg") as sheet:
        assert sheet.size == (5 * 256, 5 * 144)
        first_tile = sheet.crop((0, 0, 256, 144))
        last_tile = sheet.crop((4 * 256, 4 * 144, 5 * 256, 5 * 144))
        assert difference(first_tile, frame_at(clip, 0.0)) < 8
        assert difference(last_tile, frame_at(clip)) < 8


def test_a_short_video_gets_a_smaller_spritesheet(tmp_path: Path) -> None:
    video = tmp_path / "four.mp4"
    write_h264(
        video,
        solid_frames([(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]),
        width=64,
        height=36,
        fps=24,
    )

    render_spritesheet(video, tmp_path / "sheet.jpg")

    with Image.open(tmp_path / "sheet.jpg") as sheet:
        assert sheet.size == (2 * 64, 2 * 36)
