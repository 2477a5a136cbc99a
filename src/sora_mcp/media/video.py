"""Real video files: probe, read a frame, cut, join, and write H.264 MP4 (with an AAC track when given sound), every write atomic.

The emulator renders with this module, the server inspects downloads with it, and the tests
check both against it, so "what is in this file" has one answer. Every writer goes through
`files.atomic_path`: a crash never leaves a half-written file under the final name.

Every MP4 written here is H.264 (libx264, preset ultrafast, yuv420p) with one frame per tick
of a `1/fps` time base, so the container duration is exactly `frames / fps`.

PyAV, numpy and Pillow are imported by the functions that use them, not by this module: the
server imports it at start (downloads are inspected with it) and must answer `tools/list`
without loading them (together about half its start-up time).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

from sora_mcp.files import atomic_path
from sora_mcp.media.ahead import made_ahead
from sora_mcp.media.audio import AudioPacket, Samples, add_aac_stream, encode_samples, has_audio, read_samples
from sora_mcp.media.containers import demuxer_for

if TYPE_CHECKING:
    import av
    import av.container
    import av.video.stream
    from PIL import Image

_CODEC: Final = "libx264"
_PIX_FMT = "yuv420p"
_CODEC_OPTIONS = {"preset": "ultrafast"}
DEFAULT_CRF = 23
# x264 splits each frame into slices encoded on every core ("0" = one thread per core and a
# half). Frame threads were no faster here and add a frame of latency per thread.
_THREAD_TYPE, _THREAD_COUNT = "SLICE", 0
# Frames made ahead of the encoder: enough to keep it busy while the producer stalls briefly,
# few enough that 1080p frames in flight stay under ~25 MB.
_FRAMES_AHEAD = 8
# FFmpeg opens a lone PNG/JPEG/WebP as a one-frame "video"; a still image is not a video here.
_IMAGE_DEMUXERS = ("image2",)


@dataclass(frozen=True)
class MediaInfo:
    """What a video file holds: frame size, duration in seconds, frame count, rate, codec."""

    width: int
    height: int
    seconds: float
    frames: int
    fps: float
    codec: str


def probe(path: Path) -> MediaInfo:
    """Describe the first video stream of `path`.

    Raises:
        ValueError: the file is missing, is not a container FFmpeg can read, holds no video
            stream, or is a still image.
    """
    import av

    with _open_video(path) as (container, stream):
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        rate = _rate_of(stream)
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            seconds = frames / float(rate)
        return MediaInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            seconds=seconds,
            frames=frames,
            fps=float(rate),
            codec=stream.codec_context.name,
        )


def frame_at(path: Path, seconds: float | None = None) -> Image.Image:
    """The RGB frame on screen at `seconds` (the last frame starting at or before it), or the
    last frame of the video when `seconds` is None. Times past the end give the last frame.

    Raises:
        ValueError: `path` is not a readable video, or `seconds` is negative.
    """
    if seconds is not None and seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    import av

    with _open_video(path) as (container, stream):
        time_base = stream.time_base or Fraction(1, av.time_base)
        start = stream.start_time or 0  # some containers do not start their clock at zero
        if seconds is None:
            target = None
            offset = start + (stream.duration or 0)
        else:
            # Half a frame of slack so a time computed as index / fps lands on that frame.
            target = float(start * time_base) + seconds + 0.5 / float(_rate_of(stream))
            offset = start + int(seconds / time_base)
        container.seek(offset, stream=stream, backward=True)
        chosen = _last_frame_before(container, stream, target)
        if chosen is None:
            # The seek overshot (some muxers index keyframes coarsely): decode from the start.
            container.seek(0, stream=stream, backward=True)
            chosen = _last_frame_before(container, stream, target)
        if chosen is None:
            raise ValueError(f"{path} holds no decodable video frame")
        return to_image(chosen)


def cut_clip(src: Path, dest: Path, *, start: float, seconds: float) -> MediaInfo:
    """Write the `seconds`-long stretch of `src` beginning at `start` to `dest`, re-encoded as
    H.264 at the same size and frame rate, and describe the result.

    Raises:
        ValueError: `src` is not a readable video, or the stretch is empty or runs past its end.
    """
    if start < 0 or seconds <= 0:
        raise ValueError(f"need start >= 0 and seconds > 0, got start={start}, seconds={seconds}")
    info = probe(src)
    with _open_video(src) as (_container, stream):
        rate = _rate_of(stream)
    first = round(start * rate)
    count = round(seconds * rate)
    if count < 1 or first + count > info.frames:
        raise ValueError(
            f"cannot cut {seconds} s from {start} s: {src.name} lasts {info.seconds:.2f} s "
            f"({info.frames} frames); choose a stretch inside it"
        )
    with contextlib.closing(decode_frames(src)) as frames:
        write_h264(
            dest,
            itertools.islice(frames, first, first + count),
            width=info.width,
            height=info.height,
            fps=rate,
        )
    return probe(dest)


def concat_videos(parts: Sequence[Path], dest: Path) -> None:
    """Join `parts` into one H.264 MP4 at `dest` (atomically): every frame of each part, in order.

    Parts written by `write_h264` with one setup are joined by copying packets (no quality loss,
    milliseconds); anything else is decoded and re-encoded.

    Raises:
        ValueError: no parts, an unreadable part, or parts that differ in frame size or rate.
    """
    if not parts:
        raise ValueError("concat_videos needs at least one part")
    infos = [probe(part) for part in parts]
    first = infos[0]
    for part, info in zip(parts, infos, strict=True):
        if (info.width, info.height) != (first.width, first.height):
            raise ValueError(
                f"{part.name} is {info.width}x{info.height} but {parts[0].name} is "
                f"{first.width}x{first.height}; parts must share one frame size"
            )
        if not math.isclose(info.fps, first.fps, rel_tol=1e-6):
            raise ValueError(f"{part.name} runs at {info.fps} fps but {parts[0].name} at {first.fps} fps")
    # One track for the whole: each part's sound cut or padded to its frames (silence for a
    # part without sound), so picture and sound stay in step at every seam.
    audio = None
    if any(has_audio(part) for part in parts):
        import numpy as np

        audio = np.concatenate([read_samples(p, i.frames / i.fps) for p, i in zip(parts, infos, strict=True)])
    if _can_copy_packets(parts):
        _join_packets(parts, dest, audio)
        return

    def frames() -> Iterator[av.VideoFrame]:
        for part in parts:
            yield from decode_frames(part)

    rate = Fraction(first.fps).limit_denominator(1001)
    write_h264(dest, frames(), width=first.width, height=first.height, fps=rate, audio=audio)


def decode_frames(path: Path) -> Generator[av.VideoFrame, None, None]:
    """Every frame of the first video stream of `path`, in presentation order.

    Raises:
        ValueError: `path` is not a readable video.
    """
    with _open_video(path) as (container, stream):
        yield from container.decode(stream)


def write_h264(
    dest: Path,
    frames: Iterable[Image.Image | av.VideoFrame],
    *,
    width: int,
    height: int,
    fps: int | Fraction,
    audio: Samples | None = None,
    crf: int = DEFAULT_CRF,
) -> int:
    """Encode `frames` (PIL images or decoded frames, all `width` x `height`) into an H.264 MP4
    at `dest`, atomically, one frame per `1/fps` tick. Returns the number of frames written.
    With `audio` (mono samples at `AUDIO_RATE`) the file also has an AAC track lasting exactly
    as long as the frames: cut, or padded with silence. Sound is muxed frame by frame, so the
    file interleaves the two and plays while it downloads. `crf` is x264's quality (lower is
    better and slower; 23 is its default).

    Raises:
        ValueError: odd or non-positive dimensions (yuv420p needs even ones), no frames, or a
            frame of another size.
    """
    import av
    import numpy as np

    check_even_size(width, height)
    rate = Fraction(fps)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    count = 0
    yuv = (_to_yuv(item, width, height) for item in frames)
    with (
        atomic_path(dest, make_parents=True) as tmp,
        av.open(str(tmp), "w", format="mp4") as container,
        made_ahead(yuv, _FRAMES_AHEAD) as ready,
    ):
        stream = container.add_stream(_CODEC, rate=rate, options={**_CODEC_OPTIONS, "crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = width, height, _PIX_FMT
        stream.codec_context.thread_type = _THREAD_TYPE
        stream.codec_context.thread_count = _THREAD_COUNT
        sound = add_aac_stream(container) if audio is not None else None
        time_base, sent = 1 / rate, 0
        for frame in ready:
            frame.pts, frame.time_base = count, time_base
            container.mux(stream.encode(frame))
            count += 1
            if sound is not None and audio is not None:
                until = round(count * sound.codec_context.sample_rate / rate)
                container.mux(encode_samples(sound, _stretch(audio, sent, until), sent))
                sent = until
        if count == 0:
            raise ValueError("cannot write a video with no frames")
        container.mux(stream.encode(None))
        if sound is not None:
            container.mux(encode_samples(sound, np.zeros(0, np.float32), sent))
    return count


def _stretch(samples: Samples, start: int, end: int) -> Samples:
    """samples[start:end], padded with silence past the end of `samples`."""
    part = samples[start:end]
    if len(part) == end - start:
        return part
    import numpy as np

    return np.concatenate([part, np.zeros(end - start - len(part), dtype=np.float32)])


def check_even_size(width: int, height: int) -> None:
    """Raises ValueError unless both dimensions are positive and even (H.264 yuv420p)."""
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"video size must be positive and even for H.264 yuv420p, got {width}x{height}")


@contextlib.contextmanager
def _open_video(
    path: Path,
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    import av

    demuxer, options = demuxer_for(path)  # never a playlist or anything that names other files
    try:
        container = av.open(str(path), "r", format=demuxer, options=options)
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"{path} is not a readable video: {exc}") from exc
    try:
        if container.format.name in _IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
            raise ValueError(f"{path} is a still image ({container.format.name}), not a video")
        if not container.streams.video:
            raise ValueError(f"{path} holds no video stream")
        try:
            yield container, container.streams.video[0]
        except av.FFmpegError as exc:
            raise ValueError(f"{path} could not be decoded: {exc}") from exc
    finally:
        container.close()


def _can_copy_packets(parts: Sequence[Path]) -> bool:
    """True when every part is H.264 without B-frames and with one codec setup and time base,
    so packets from each can follow the previous part's with shifted timestamps."""
    setups = set()
    for part in parts:
        with _open_video(part) as (_container, stream):
            context = stream.codec_context
            if context.name != "h264" or context.has_b_frames:
                return False
            setups.add((bytes(context.extradata or b""), stream.time_base))
    return len(setups) == 1


def _join_packets(parts: Sequence[Path], dest: Path, audio: Samples | None) -> None:
    import av
    import numpy as np

    with (
        atomic_path(dest, make_parents=True) as tmp,
        av.open(str(tmp), "w", format="mp4") as out,
        _open_video(parts[0]) as (_head, template),
    ):
        target = out.add_stream_from_template(template)
        sound: list[AudioPacket] = []
        if audio is not None:
            # The joined track is encoded whole (milliseconds): copying each part's AAC packets
            # would replay every part's encoder priming as a click at each seam.
            track = add_aac_stream(out)
            sound = encode_samples(track, audio, 0) + encode_samples(
                track, np.zeros(0, np.float32), len(audio)
            )
        sound.reverse()  # popped from the end, in time order
        offset = 0
        for part in parts:
            with _open_video(part) as (container, stream):
                end = offset
                for packet in container.demux(stream):
                    if packet.pts is None or packet.dts is None:
                        continue  # the demuxer's empty end-of-stream packet
                    packet.pts += offset
                    packet.dts += offset
                    end = max(end, packet.pts + (packet.duration or 0))
                    while sound and _seconds(sound[-1]) <= packet.dts * packet.time_base:
                        out.mux(sound.pop())
                    packet.stream = target
                    out.mux(packet)
                offset = end
        out.mux(sound[::-1])


def _seconds(packet: AudioPacket) -> Fraction:
    return Fraction(packet.pts or 0) * (packet.time_base or 0)


def _rate_of(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise ValueError("the video stream declares no frame rate")
    return Fraction(rate)


def _last_frame_before(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    target: float | None,
) -> av.VideoFrame | None:
    chosen: av.VideoFrame | None = None
    for frame in container.decode(stream):
        if target is not None and frame.time is not None and frame.time > target:
            break
        chosen = frame
    return chosen


def _to_yuv(item: Image.Image | av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    import av
    from PIL import Image

    if isinstance(item, Image.Image):
        if item.size != (width, height):
            raise ValueError(f"frame is {item.size[0]}x{item.size[1]}, expected {width}x{height}")
        rgb = item.convert("RGB") if item.mode != "RGB" else item
        frame = av.VideoFrame.from_image(rgb)  # type: ignore[no-untyped-call]  # PyAV stub lacks types
    else:
        if (item.width, item.height) != (width, height):
            raise ValueError(f"frame is {item.width}x{item.height}, expected {width}x{height}")
        frame = item
    if frame.format.name == _PIX_FMT:
        return cast("av.VideoFrame", frame)
    # Nearest-neighbour chroma subsampling: measurably faster than the default filter and
    # invisible at these sizes; the emulator's render budget is about 1 s per 4 s of 720p.
    return cast("av.VideoFrame", frame.reformat(format=_PIX_FMT, interpolation="POINT"))


def to_image(frame: av.VideoFrame) -> Image.Image:
    """The frame as an RGB PIL image."""
    return cast("Image.Image", frame.to_image())  # type: ignore[no-untyped-call]  # PyAV stub lacks types
