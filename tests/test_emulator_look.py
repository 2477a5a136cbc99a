"""The emulator's clips look and sound like what they stand for: sound from the prompt, colour
words setting the palette, a compact caption, labels inside the frame, character marks by kind,
and extensions that go on from their source. Checked on real files with PyAV."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import httpx2
import numpy as np
import pytest
from PIL import Image, ImageChops, ImageStat

from sora_mcp import catalog
from sora_mcp.clock import FakeClock
from sora_mcp.emulator.cast import badge, character_kind
from sora_mcp.emulator.render import RenderSpec, layout, render_video
from sora_mcp.media.audio import read_samples
from sora_mcp.media.video import concat_videos, decode_frames, frame_at, probe, to_image, write_h264

W, H = 320, 180
LONGEST_RENDER = catalog.estimate_render_seconds("sora-2-pro", 20) / 20


def rendered(tmp_path: Path, prompt: str, name: str = "clip.mp4", **overrides: Any) -> Path:
    fields: dict[str, Any] = {"prompt": prompt, "width": W, "height": H, "seconds": 2.0, **overrides}
    dest = tmp_path / name
    render_video(RenderSpec(**fields), dest)
    return dest


def audio_track(path: Path) -> tuple[str, int, float]:
    """Codec, sample rate and duration in seconds of the file's audio stream."""
    with av.open(str(path)) as container:
        (stream,) = container.streams.audio
        assert stream.duration is not None and stream.time_base is not None
        return (
            stream.codec_context.name,
            stream.codec_context.sample_rate,
            float(stream.duration * stream.time_base),
        )


def difference(a: Image.Image, b: Image.Image) -> float:
    small = (64, 36)
    a, b = (
        a.convert("RGB").resize(small, Image.Resampling.BOX),
        b.convert("RGB").resize(small, Image.Resampling.BOX),
    )
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def dominant_hue(image: Image.Image) -> float:
    """The saturation-weighted circular mean hue of a picture, in turns (red is 0)."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.float64)
    angle = hsv[..., 0] / 256 * 2 * np.pi
    weight = hsv[..., 1] * hsv[..., 2]
    return (
        float(np.arctan2((weight * np.sin(angle)).sum(), (weight * np.cos(angle)).sum()) / (2 * np.pi)) % 1.0
    )


def hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 1 - abs(a - b))


def spectral_centroid(samples: np.ndarray[Any, np.dtype[np.float32]], rate: int = 48_000) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    return float((spectrum * frequencies).sum() / spectrum.sum())


# --- sound -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "fps"), [(2.0, 24), (1.5, 6), (4.0, 4)])
def test_a_clip_has_an_aac_track_exactly_as_long_as_its_video(
    tmp_path: Path, seconds: float, fps: int
) -> None:
    clip = rendered(tmp_path, "Waves roll onto a quiet beach at dawn", seconds=seconds, fps=fps)

    codec, rate, duration = audio_track(clip)
    assert (codec, rate) == ("aac", 48_000)
    assert duration == pytest.approx(probe(clip).seconds, abs=0.025)  # within one AAC frame
    samples = read_samples(clip, seconds)
    assert float(np.sqrt(np.mean(samples**2))) > 0.02  # audible, not silence


def test_the_ambience_follows_the_words(tmp_path: Path) -> None:
    rain = read_samples(rendered(tmp_path, "Rain falls on a tin roof", "rain.mp4"), 2.0)
    city = read_samples(rendered(tmp_path, "Traffic crawls through the city at noon", "city.mp4"), 2.0)

    assert spectral_centroid(rain) > 2 * spectral_centroid(city)


def test_a_quoted_line_is_heard_as_a_rhythm_of_syllable_tones(tmp_path: Path) -> None:
    plain = read_samples(rendered(tmp_path, "A robot waves in a quiet lab", "plain.mp4"), 2.0)
    spoken = read_samples(
        rendered(tmp_path, 'A robot waves in a quiet lab and says "Hello there, my friend!"', "line.mp4"), 2.0
    )

    def loudness_swing(samples: np.ndarray[Any, np.dtype[np.float32]]) -> float:
        windows = samples[: len(samples) // 960 * 960].reshape(-1, 960)  # 20 ms
        loudness = np.sqrt((windows**2).mean(axis=1))
        return float(loudness.std() / loudness.mean())

    assert loudness_swing(spoken) > 2 * loudness_swing(plain)


def test_joined_clips_keep_one_track_in_step_with_the_picture(tmp_path: Path) -> None:
    silent = tmp_path / "silent.mp4"
    write_h264(silent, (Image.new("RGB", (W, H), (20, 20, 20)) for _ in range(24)), width=W, height=H, fps=24)
    loud = rendered(tmp_path, "Thunder rolls over a stormy sea", "loud.mp4", seconds=1.0)

    for parts in ([silent, loud], [loud, loud]):  # re-encoded, and joined by copying packets
        joined = tmp_path / "joined.mp4"
        concat_videos(parts, joined)

        _codec, _rate, duration = audio_track(joined)
        assert duration == pytest.approx(2.0, abs=0.025)
        samples = read_samples(joined, 2.0)
        first, second = samples[:48_000], samples[48_000:]
        own = read_samples(loud, 1.0)
        assert float(np.abs(second - own).mean()) < 0.05 * float(np.abs(own).mean()) + 1e-3
        if parts[0] is silent:
            assert float(np.abs(first).max()) < 1e-3


# --- picture -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "hue"),
    [
        ("A red sports car ad, glossy studio lighting", 0.0),
        ("A blue whale glides through deep water", 0.62),
        ("Green hills roll under a summer sky", 0.33),
        ("A bright yellow raincoat on a busy street", 0.16),
    ],
)
def test_a_colour_word_in_the_prompt_sets_the_palette(tmp_path: Path, prompt: str, hue: float) -> None:
    clip = rendered(tmp_path, prompt, width=640, height=360)

    assert hue_distance(dominant_hue(frame_at(clip, 1.0)), hue) < 0.05


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280), (1920, 1080), (1792, 1024)])
def test_the_caption_is_compact_and_leaves_the_subject_visible(width: int, height: int) -> None:
    long_prompt = "Wide establishing shot, 35mm, dawn: a red paper boat drifts down a rain-soaked " * 4

    caption = layout(RenderSpec(prompt=long_prompt, width=width, height=height, seconds=4)).caption

    left, top, right, bottom = caption
    assert bottom - top <= 0.12 * height  # the old caption took the lower quarter
    assert top >= 0.85 * height  # it sits at the bottom edge, above the progress bar
    assert right - left <= max(0.65 * width, 0.95 * min(width, height))


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280), (320, 180), (64, 64)])
def test_every_label_and_badge_stays_inside_the_frame(width: int, height: int) -> None:
    spec = RenderSpec(
        prompt="Bartholomew-the-Magnificent-Second, a tiny robot, and Momo the cat wander",
        width=width,
        height=height,
        seconds=4,
        video_id="video_" + "f" * 40,
        characters=("Bartholomew-the-Magnificent-Second", "Momo"),
        note="edit: make it night, with fog rolling in from the harbour and lanterns glowing",
    )
    for t in (0.0, 0.7, 1.3, 2.2, 3.1, 3.9):
        boxes = layout(spec, t)
        assert boxes.banner is not None  # the spec has a note, so there is a banner
        for left, top, right, bottom in (
            boxes.mark,
            boxes.corner,
            boxes.caption,
            boxes.banner,
            *boxes.badges,
        ):
            assert 0 <= left < right <= width and 0 <= top < bottom <= height, (t, boxes)


@pytest.mark.parametrize(
    ("name", "prompt", "kind"),
    [
        ("Pip", "Pip, a small silver robot, waves hello", "robot"),
        ("Momo", "Momo the cat naps in the sun", "cat"),
        ("Rex", "A puppy named Rex chases a ball", "dog"),
        ("Skipper the paper boat", "Skipper the paper boat sails away", "boat"),
        ("Kiki", "Kiki flaps her wings, a bright parrot", "bird"),
        ("Zorb", "Zorb hovers over the desk", "creature"),
    ],
)
def test_a_character_is_marked_as_what_the_prompt_says_it_is(name: str, prompt: str, kind: str) -> None:
    assert character_kind(name, prompt) == kind


def test_characters_of_different_kinds_get_different_marks() -> None:
    marks = {
        kind: badge("Pip", kind, (240, 180, 40), (1280, 720)) for kind in ("robot", "cat", "bird", "creature")
    }

    pictures = list(marks.values())
    for k, first in enumerate(pictures):
        for second in pictures[k + 1 :]:
            assert difference(first, second) > 1


# --- extensions --------------------------------------------------------------------------------


async def completed(client: httpx2.AsyncClient, clock: FakeClock, path: str, **body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    clock.advance(LONGEST_RENDER)
    video: dict[str, Any] = (await client.get(f"/videos/{response.json()['id']}")).json()
    assert video["status"] == "completed", video
    return video


@pytest.mark.anyio
async def test_an_extension_goes_on_from_its_source_without_a_cut(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    source = await completed(client, clock, "/videos", prompt="A red kite over green hills", size="1280x720")
    extension = await completed(
        client,
        clock,
        "/videos/extensions",
        prompt="The kite climbs into a deep blue evening sky",
        seconds="4",
        video={"id": source["id"]},
    )
    path = tmp_path / "extended.mp4"
    path.write_bytes((await client.get(f"/videos/{extension['id']}/content")).content)

    frames = [to_image(frame) for frame in decode_frames(path)]  # 4 fps in the test app
    seam = len(frames) // 2
    assert len(frames) == 32
    step_elsewhere = max(difference(frames[k], frames[k + 1]) for k in range(2, seam - 2))
    assert difference(frames[seam - 1], frames[seam]) <= max(3.0, 1.5 * step_elsewhere)  # no hard cut
    # Four seconds on, the extension's colours have taken over: it is a new shot, not a freeze.
    assert hue_distance(dominant_hue(frames[-1]), 0.62) < 0.08
    # The progress bar runs on across the seam (a restarted timeline would be nearly empty).
    bar = frames[seam].crop((0, 720 - 4, 1280, 720)).convert("RGB")
    filled = sum(
        1
        for x in range(0, 1280, 8)
        if difference(bar.crop((x, 0, x + 8, 4)), frames[seam].crop((x, 700, x + 8, 704))) > 20
    )
    assert 0.4 < filled / 160 < 0.7
    _codec, _rate, duration = audio_track(path)
    assert duration == pytest.approx(8.0, abs=0.025)


def test_a_continuing_clip_starts_on_the_picture_it_is_given(tmp_path: Path) -> None:
    first = RenderSpec(prompt="A lighthouse at dusk", width=W, height=H, seconds=1.0, timeline=(0.0, 2.0))
    ending = render_video(first, tmp_path / "a.mp4")
    buffer = io.BytesIO()
    ending.save(buffer, format="PNG")

    second = rendered(
        tmp_path,
        "Fireworks burst over the sea",
        "b.mp4",
        seconds=1.0,
        lead_in=buffer.getvalue(),
        timeline=(1.0, 2.0),
    )

    last_of_first = frame_at(tmp_path / "a.mp4")
    assert difference(frame_at(second, 0.0), last_of_first) < 4
    assert difference(frame_at(second), last_of_first) > 10
