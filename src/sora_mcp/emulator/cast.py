"""Characters in a simulated clip: a badge per character, its mark drawn for what the character
is (a robot, a cat, a bird...) as the prompt says, walking to and fro inside the frame.

The kind is read from the prompt around the character's name ("Pip, a small robot, ..."),
then from its name ("Captain Whiskers the cat"), else a generic creature: characters stand
for non-human subjects (mascots, creatures, toys, pets), so a human silhouette is the odd one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from sora_mcp.emulator import look

Draw = ImageDraw.ImageDraw
Ink = tuple[int, int, int, int]

_KINDS: dict[str, tuple[str, ...]] = {
    "robot": ("robot", "robots", "android", "droid", "bot", "cyborg", "mech", "automaton", "machine"),
    "cat": ("cat", "cats", "kitten", "kitty", "tiger", "lion", "lynx", "panther"),
    "dog": ("dog", "dogs", "puppy", "pup", "hound", "wolf", "fox", "corgi", "terrier", "poodle"),
    "bird": (
        "bird",
        "birds",
        "parrot",
        "owl",
        "penguin",
        "duck",
        "chick",
        "crow",
        "eagle",
        "pigeon",
        "crane",
        "robin",
    ),
    "fish": ("fish", "goldfish", "shark", "whale", "dolphin", "octopus", "squid", "seal"),
    "toy": ("toy", "teddy", "bear", "plush", "doll", "mascot", "puppet", "figurine"),
    "boat": ("boat", "ship", "sailboat", "yacht", "canoe", "raft", "submarine"),
    "person": ("person", "man", "woman", "girl", "boy", "kid", "child", "human", "chef", "astronaut"),
}
_WORD_KIND = {word: kind for kind, words in _KINDS.items() for word in words}
_WINDOW_AFTER, _WINDOW_BEFORE = 6, 3  # words around the name that may say what it is


def character_kind(name: str, prompt: str) -> str:
    """What the character `name` is in `prompt`: one of the kinds above, or "creature"."""
    words = re.findall(r"[a-z]+", prompt.lower())
    named = re.findall(r"[a-z]+", name.lower())
    for start in range(len(words) - len(named) + 1):
        if named and words[start : start + len(named)] == named:
            after = words[start + len(named) : start + len(named) + _WINDOW_AFTER]
            before = words[max(0, start - _WINDOW_BEFORE) : start][::-1]
            for word in (*after, *before):
                if word in _WORD_KIND:
                    return _WORD_KIND[word]
    return next((_WORD_KIND[word] for word in named if word in _WORD_KIND), "creature")


@dataclass(frozen=True)
class Walker:
    """A badge walking to and fro along its row, its whole width always inside the frame."""

    image: Image.Image
    row: float
    phase: float  # where in its walk it is at t = 0, as a fraction of a round trip
    seconds_per_trip: float
    bob: float

    def position(self, t: float, frame: tuple[int, int]) -> tuple[int, int]:
        room = max(0, frame[0] - self.image.width)
        turn = (self.phase + t / self.seconds_per_trip) % 1.0
        x = room * (2 * turn if turn < 0.5 else 2 - 2 * turn)
        y = min(
            max(0.0, self.row + self.bob * math.sin(2 * math.pi * t)), max(0, frame[1] - self.image.height)
        )
        return round(x), round(y)


def walkers(names: Sequence[str], prompt: str, size: tuple[int, int]) -> list[Walker]:
    """One badge per name on its own row; alternate rows start walking the other way."""
    result = []
    for k, name in enumerate(names):
        data = look.digest(f"character {name}", 6)
        image = badge(name, character_kind(name, prompt), look.hsv(look.unit(data, 0), 0.65, 0.95), size)
        row = size[1] * (0.3 + 0.22 * (k % 3)) - image.height / 2
        phase = look.unit(data, 2) * 0.5 + (0.5 if k % 2 else 0.0)
        trip = 2 * (size[0] / max(1.0, size[0] * (0.08 + 0.1 * look.unit(data, 1))))
        result.append(Walker(image, row, phase, trip, bob=min(size) * 0.015))
    return result


def badge(name: str, kind: str, colour: look.Rgb, size: tuple[int, int]) -> Image.Image:
    """The character's mark above a name plate, in its own colour; never wider than the frame."""
    side = min(size)
    font = look.font(max(8, round(side * 0.04)))
    pad = max(2, round(side * 0.012))
    widest = max(1.0, min(side * 0.6, size[0] - 2 * pad - 4))
    label = look.ellipsize(name, font, widest)
    plate = (round(font.getlength(label)) + 2 * pad, look.line_height(font) + 2 * pad)
    figure = max(12, round(side * 0.18))
    width, height = max(plate[0], figure), figure + plate[1]
    image = Image.new("RGBA", (width, height))
    draw = ImageDraw.Draw(image)
    ink: Ink = (*colour, 255)
    _MARKS.get(kind, _creature)(draw, (width - figure) // 2, figure, ink)
    draw.rounded_rectangle((0, figure, width - 1, height - 1), 2 * pad, fill=(15, 15, 20, 220), outline=ink)
    draw.text((width / 2, figure + plate[1] / 2), label, font=font, fill=ink, anchor="mm")
    return image


# --- marks: each draws a silhouette in the square (x, 0)-(x + s, s) ---------------------------


def _robot(draw: Draw, x: int, s: int, ink: Ink) -> None:
    draw.line((x + s // 2, 0, x + s // 2, s // 6), fill=ink, width=max(1, s // 16))
    draw.rectangle((x + s // 4, s // 6, x + 3 * s // 4, s // 2), fill=ink)
    eye = max(1, s // 14)
    for ex in (x + s * 3 // 8, x + s * 5 // 8):
        draw.rectangle((ex - eye, s // 3 - eye, ex + eye, s // 3 + eye), fill=(15, 15, 20, 255))
    draw.rectangle((x + s // 5, s // 2 + s // 20, x + 4 * s // 5, s - 1), fill=ink)


def _cat(draw: Draw, x: int, s: int, ink: Ink) -> None:
    draw.polygon([(x + s // 5, s // 3), (x + s // 4, 0), (x + s * 2 // 5, s // 5)], fill=ink)
    draw.polygon([(x + 4 * s // 5, s // 3), (x + 3 * s // 4, 0), (x + s * 3 // 5, s // 5)], fill=ink)
    draw.ellipse((x + s // 5, s // 8, x + 4 * s // 5, s * 5 // 8), fill=ink)
    draw.ellipse((x + s // 6, s // 2, x + 5 * s // 6, s - 1), fill=ink)


def _dog(draw: Draw, x: int, s: int, ink: Ink) -> None:
    draw.ellipse((x + s // 4, s // 10, x + 3 * s // 4, s * 3 // 5), fill=ink)
    draw.ellipse((x + s // 8, s // 6, x + s * 3 // 8, s // 2), fill=ink)  # floppy ears
    draw.ellipse((x + s * 5 // 8, s // 6, x + s * 7 // 8, s // 2), fill=ink)
    draw.ellipse((x + s * 3 // 8, s * 2 // 5, x + s * 5 // 8, s * 3 // 5), fill=ink)  # snout
    draw.ellipse((x + s // 6, s // 2, x + 5 * s // 6, s - 1), fill=ink)


def _bird(draw: Draw, x: int, s: int, ink: Ink) -> None:
    draw.ellipse((x + s // 6, s // 3, x + 4 * s // 5, s - 1), fill=ink)
    draw.ellipse((x + s // 2, s // 8, x + 5 * s // 6, s // 2), fill=ink)
    draw.polygon([(x + 5 * s // 6, s // 4), (x + s - 1, s // 3), (x + 5 * s // 6, s * 2 // 5)], fill=ink)
    draw.polygon([(x + s // 6, s * 2 // 3), (x, s // 2), (x, s * 5 // 6)], fill=ink)  # tail


def _fish(draw: Draw, x: int, s: int, ink: Ink) -> None:
    draw.ellipse((x + s // 8, s // 4, x + 3 * s // 4, s * 3 // 4), fill=ink)
    draw.polygon([(x + 3 * s // 4 - 2, s // 2), (x + s - 1, s // 4), (x + s - 1, s * 3 // 4)], fill=ink)


def _toy(draw: Draw, x: int, s: int, ink: Ink) -> None:
    ear = s // 5
    draw.ellipse((x + s // 5, 0, x + s // 5 + ear, ear), fill=ink)
    draw.ellipse((x + 4 * s // 5 - ear, 0, x + 4 * s // 5, ear), fill=ink)
    draw.ellipse((x + s // 4, s // 12, x + 3 * s // 4, s * 7 // 12), fill=ink)
    draw.ellipse((x + s // 5, s // 2, x + 4 * s // 5, s - 1), fill=ink)


def _boat(draw: Draw, x: int, s: int, ink: Ink) -> None:
    draw.polygon([(x + s // 2, 0), (x + s // 2, s * 3 // 5), (x + s // 6, s * 3 // 5)], fill=ink)  # sail
    draw.polygon(
        [(x + s * 5 // 9, s // 8), (x + s * 5 // 9, s * 3 // 5), (x + s * 5 // 6, s * 3 // 5)], fill=ink
    )
    draw.polygon(
        [(x, s * 2 // 3), (x + s - 1, s * 2 // 3), (x + s * 4 // 5, s - 1), (x + s // 5, s - 1)], fill=ink
    )


def _person(draw: Draw, x: int, s: int, ink: Ink) -> None:
    head = s // 3
    draw.ellipse((x + s // 2 - head // 2, 0, x + s // 2 + head // 2, head), fill=ink)
    draw.rounded_rectangle((x + s // 6, head + 1, x + 5 * s // 6, s), s // 6, fill=ink)


def _creature(draw: Draw, x: int, s: int, ink: Ink) -> None:
    draw.ellipse((x + s // 8, s // 6, x + 7 * s // 8, s - s // 8), fill=ink)
    eye, dark = max(2, s // 8), (15, 15, 20, 255)
    for ex in (x + s * 3 // 8, x + s * 5 // 8):
        draw.ellipse((ex - eye // 2, s // 3, ex + eye // 2, s // 3 + eye), fill=(255, 255, 255, 255))
        draw.ellipse((ex - eye // 4, s // 3 + eye // 4, ex + eye // 4, s // 3 + eye * 3 // 4), fill=dark)
    draw.rectangle((x + s // 3, s - s // 8, x + s // 3 + s // 10, s - 1), fill=ink)  # feet
    draw.rectangle((x + 2 * s // 3 - s // 10, s - s // 8, x + 2 * s // 3, s - 1), fill=ink)


_MARKS: dict[str, Callable[[Draw, int, int, Ink], None]] = {
    "robot": _robot,
    "cat": _cat,
    "dog": _dog,
    "bird": _bird,
    "fish": _fish,
    "toy": _toy,
    "boat": _boat,
    "person": _person,
}
