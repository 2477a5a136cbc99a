"""The soundtrack of a simulated clip: an ambience and a chord derived from the prompt, and a
quoted line of dialogue as a rhythm of syllable tones, so a player shows (and plays) a real
audio track, as Sora's clips have one.

Like the picture, the sound is a deterministic function of the words: the chord's root, its
mode and the pulse come from the prompt's hash; weather and place words shape the noise bed
("rain" hisses, "ocean" swells, "city" rumbles); a line in double quotes is "spoken" one tone
per syllable, pitched by word, with pauses at punctuation, repeated while the clip lasts.
Times are on the video's timeline (`start`), so an extension's ambience goes on from where
its source stopped instead of restarting.
"""

from __future__ import annotations

import math
import re

import numpy as np
from numpy.typing import NDArray

from sora_mcp.emulator import look

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

RATE = 48_000  # samples per second: a whole number of samples per frame at 24, 25, 30 or 60 fps
_PEAK = 0.5  # about -6 dBFS: clearly audible, never clipped by the encoder
_EDGE_SECONDS = 0.01  # fades at the clip's ends, so joined parts do not click at the seam
_PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)  # semitones above the root
_SYLLABLE_SECONDS, _SYLLABLE_GAP, _WORD_GAP, _PHRASE_GAP = 0.11, 0.03, 0.08, 0.28
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')

# Words that pick the noise bed: (band low Hz, band high Hz, level, swell Hz).
_BEDS: dict[str, tuple[float, float, float, float]] = {
    "rain": (2500, 9000, 0.35, 0.0),
    "storm": (150, 6000, 0.45, 0.3),
    "ocean": (120, 1200, 0.4, 0.12),
    "sea": (120, 1200, 0.4, 0.12),
    "waves": (120, 1200, 0.4, 0.12),
    "beach": (150, 1500, 0.3, 0.12),
    "wind": (200, 900, 0.3, 0.2),
    "snow": (300, 1500, 0.12, 0.1),
    "city": (40, 300, 0.35, 0.05),
    "street": (40, 400, 0.3, 0.05),
    "traffic": (40, 300, 0.4, 0.05),
    "forest": (1500, 5000, 0.12, 0.25),
    "fire": (600, 4000, 0.25, 1.5),
    "space": (30, 120, 0.3, 0.03),
}
_CALM_BED = (200, 2000, 0.06, 0.1)
_MINOR_WORDS = frozenset(
    {"night", "dark", "rain", "storm", "sad", "lonely", "noir", "fog", "gloomy", "moody"}
)


def soundtrack(prompt: str, seconds: float, *, start: float = 0.0, rate: int = RATE) -> F32:
    """`round(seconds * rate)` mono samples in [-1, 1] for a clip of `prompt` starting at
    `start` seconds on its video's timeline."""
    count = max(0, round(seconds * rate))
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    words = re.findall(r"[a-z']+", prompt.lower())
    data = look.digest(prompt)
    t = start + np.arange(count, dtype=np.float64) / rate
    line = quoted_line(prompt)
    # Under a line of dialogue the pad steps back, as a mix would duck music under speech.
    sound = (0.3 if line else 0.5) * _chord(t, data, minor=bool(_MINOR_WORDS.intersection(words)))
    sound += _bed(count, rate, round(start * rate), words, data)
    if line:
        sound += _spoken(line, t, rate, data)
    peak = float(np.max(np.abs(sound))) or 1.0
    sound *= _PEAK / peak
    edge = min(count // 2, round(_EDGE_SECONDS * rate))
    if edge:
        ramp = np.linspace(0.0, 1.0, edge)
        sound[:edge] *= ramp
        sound[count - edge :] *= ramp[::-1]
    return sound.astype(np.float32)


def quoted_line(prompt: str) -> str | None:
    """The first line of dialogue in double quotes (straight or curly), if the prompt has one."""
    match = _QUOTED.search(prompt)
    return (match.group(1) or match.group(2)).strip() or None if match else None


def _chord(t: F64, data: bytes, *, minor: bool) -> F64:
    """Root, third and fifth a little detuned, breathing slowly: an ambient pad. Its partials
    stay under 400 Hz, so it is computed at 1/8 of the rate and interpolated up (8x cheaper)."""
    root = 110.0 * 2 ** (_PENTATONIC[data[30] % 5] / 12)  # A2 to F#3
    third = 2 ** ((3 if minor else 4) / 12)
    coarse = np.linspace(t[0], t[-1], max(2, len(t) // 8), dtype=np.float64)
    pad = np.zeros_like(coarse)
    for ratio, level in ((1.0, 0.5), (third, 0.25), (1.5, 0.3), (1.003, 0.25), (1.503, 0.15)):
        pad += level * _sine(root * ratio, coarse)
    pad *= 0.6 + 0.4 * _sine(0.08 + 0.1 * look.unit(data, 31), coarse)
    return np.interp(t, coarse, pad)


def _sine(frequency: float, t: F64) -> F64:
    # The phase is reduced to one turn first: sin of large arguments is slow and imprecise.
    turns = np.mod(frequency * t, 1.0)
    turns *= 2 * math.pi
    return np.sin(turns)


def _bed(count: int, rate: int, offset: int, words: list[str], data: bytes) -> F64:
    """Band-limited noise, shaped in the frequency domain over a loop of 2^17 samples (2.7 s):
    the filter is circular, so the loop repeats without a seam, and `offset` (the clip's
    start on its timeline, in samples) picks up where an earlier clip of the video left it."""
    low, high, level, swell = next((_BEDS[w] for w in words if w in _BEDS), _CALM_BED)
    loop = 1 << 17
    noise = np.random.default_rng(int.from_bytes(data[:8], "big")).standard_normal(loop)
    spectrum = np.fft.rfft(noise)
    frequencies = np.fft.rfftfreq(loop, 1 / rate)
    spectrum[(frequencies < low) | (frequencies > high)] = 0
    shaped = np.fft.irfft(spectrum, loop)
    shaped *= level * 0.35 / (float(np.std(shaped)) or 1.0)
    bed = np.take(shaped, np.arange(offset, offset + count) % loop)
    if swell:
        bed *= 0.55 + 0.45 * _sine(swell, (offset + np.arange(count)) / rate)
    return bed


def _spoken(line: str, t: F64, rate: int, data: bytes) -> F64:
    """Each word of `line` as tones, one per syllable; the whole line repeats after a pause.
    `t` counts from the clip's start: the line is said anew in every clip."""
    notes: list[tuple[float, float]] = []  # start, frequency
    at = 0.4
    root = 220.0 * 2 ** (_PENTATONIC[data[40] % 5] / 12)
    for word in re.findall(r"[\w']+|[.,!?;:]", line):
        if not word[0].isalnum():
            at += _PHRASE_GAP
            continue
        pitch = look.digest(word, 2)[0]
        for syllable in range(max(1, len(re.findall(r"[aeiouy]+", word.lower())))):
            degree = _PENTATONIC[(pitch + syllable) % len(_PENTATONIC)]
            notes.append((at, root * 2 ** (degree / 12)))
            at += _SYLLABLE_SECONDS + _SYLLABLE_GAP
        at += _WORD_GAP
    period, length = at + 1.0, round(_SYLLABLE_SECONDS * rate)
    age = np.arange(length) / rate
    envelope = np.minimum(1.0, age / 0.008) * np.exp(-age * 14)
    voice = np.zeros_like(t)
    for repeat in range(math.ceil(len(t) / rate / period)):
        for begin, frequency in notes:
            first = round((repeat * period + begin) * rate)
            if first >= len(t):
                break
            phase = 2 * math.pi * frequency * age
            tone = envelope * (np.sin(phase) + 0.35 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase))
            end = min(len(t), first + length)
            voice[first:end] = tone[: end - first]
    return voice
