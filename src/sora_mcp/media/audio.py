"""AAC audio in the MP4s written by `sora_mcp.media.video`: encode mono samples, read a file's
track back as samples. A track lasts exactly as long as its video (samples are cut or padded
to the frames' duration), so joined clips stay in sync part after part.

PyAV and numpy are imported by the functions that use them (see `video.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import av
    import av.audio.stream
    import av.container
    import numpy as np
    from numpy.typing import NDArray

Samples: TypeAlias = "NDArray[np.float32]"
# The stubs make Packet generic; the runtime class is not subscriptable (a string is never evaluated).
AudioPacket: TypeAlias = "av.Packet[av.audio.stream.AudioStream]"

AUDIO_RATE = 48_000
_BIT_RATE = 64_000  # mono
_PIECE = 4096  # samples per frame handed to the encoder (AAC frames are 1024)


def add_aac_stream(
    container: av.container.OutputContainer, rate: int = AUDIO_RATE
) -> av.audio.stream.AudioStream:
    """A mono AAC stream in `container`, at `rate` samples per second."""
    # FFmpeg's own encoder is in every build; its "fast" coder is about 2.5x quicker than the
    # default search and indistinguishable on the emulator's tones and noise.
    stream = container.add_stream("aac", rate=rate, layout="mono", options={"aac_coder": "fast"})
    stream.bit_rate = _BIT_RATE
    return stream


def encode_samples(stream: av.audio.stream.AudioStream, samples: Samples, first: int) -> list[AudioPacket]:
    """Packets for `samples` (mono floats in [-1, 1]) starting at sample `first` of the track;
    an empty `samples` flushes the encoder (call it once, at the end)."""
    if not len(samples):
        return list(stream.encode(None))
    import av
    import numpy as np

    rate = stream.codec_context.sample_rate
    packets: list[AudioPacket] = []
    # Handed over in encoder-sized pieces: one long frame makes PyAV's re-chunking crawl.
    for at in range(0, len(samples), _PIECE):
        piece = np.ascontiguousarray(samples[at : at + _PIECE], dtype=np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts, frame.time_base = first + at, Fraction(1, rate)
        packets += stream.encode(frame)
    return packets


def read_samples(path: Path, seconds: float, rate: int = AUDIO_RATE) -> Samples:
    """The first audio track of `path` as mono samples at `rate`, cut or padded with silence
    to exactly `round(seconds * rate)`; silence for a file without audio.

    Raises:
        ValueError: `path` is not a readable media file.
    """
    import av
    import numpy as np

    count = round(seconds * rate)
    out = np.zeros(count, dtype=np.float32)
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"{path} is not a readable media file: {exc}") from exc
    with container:
        if not container.streams.audio:
            return out
        at = 0
        for chunk in _decoded(container, rate):
            take = min(len(chunk), count - at)
            out[at : at + take] = chunk[:take]
            at += take
            if at >= count:
                break
    return out


def has_audio(path: Path) -> bool:
    import av

    with av.open(str(path), "r") as container:
        return bool(container.streams.audio)


def _decoded(container: av.container.InputContainer, rate: int) -> Iterator[Samples]:
    import av
    import numpy as np

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    for frame in container.decode(container.streams.audio[0]):
        for mono in resampler.resample(frame):
            yield mono.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    for mono in resampler.resample(None):
        yield mono.to_ndarray().reshape(-1).astype(np.float32, copy=False)
