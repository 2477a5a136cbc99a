from __future__ import annotations

import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest
from PIL import Image

from sora_mcp.api.client import VideosClient
from sora_mcp.emulator.store import EmulatorStore
from sora_mcp.errors import InvalidRequest
from sora_mcp.files import PRIVATE_FILE_MODE, atomic_output, atomic_write_bytes, confine, safe_filename
from sora_mcp.media.video import probe, write_h264


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"old")

    atomic_write_bytes(dest, b"new bytes")

    assert dest.read_bytes() == b"new bytes"
    assert list(tmp_path.iterdir()) == [dest]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_a_failing_atomic_output_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"old")

    def interrupted_download() -> None:
        with atomic_output(dest) as out:
            out.write(b"half a vid")
            raise ConnectionError("download dropped")

    with pytest.raises(ConnectionError):
        interrupted_download()

    assert dest.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [dest]


def test_atomic_output_streams_chunks_into_a_new_file(tmp_path: Path) -> None:
    dest = tmp_path / ("x" * 200 + ".mp4")

    with atomic_output(dest) as out:
        for chunk in (b"a", b"b", b"c"):
            out.write(chunk)

    assert dest.read_bytes() == b"abc"


def test_paths_inside_a_root_are_accepted_absolute_or_relative(tmp_path: Path, root: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()

    assert confine(root / "a" / "b.png", [root]) == (root / "a" / "b.png").resolve()
    assert confine("sub/c.png", [root]) == (root / "sub" / "c.png").resolve()
    assert confine(str(other / "d.png"), [root, other]) == (other / "d.png").resolve()


def test_dot_dot_out_of_the_root_is_refused(root: Path) -> None:
    with pytest.raises(InvalidRequest) as caught:
        confine("../secret.txt", [root])
    assert caught.value.param == "path"
    assert str(root.resolve()) in str(caught.value)

    with pytest.raises(InvalidRequest):
        confine(root / "a" / ".." / ".." / "secret.txt", [root])


def test_an_absolute_path_elsewhere_is_refused_even_with_a_shared_prefix(tmp_path: Path, root: Path) -> None:
    sibling = tmp_path / "root2"
    sibling.mkdir()

    with pytest.raises(InvalidRequest):
        confine("/etc/passwd", [root])
    with pytest.raises(InvalidRequest):
        confine(sibling / "x.png", [root])


def test_symlinks_pointing_out_of_the_root_are_refused(tmp_path: Path, root: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "dangling.png").symlink_to(outside / "not-yet.png")

    with pytest.raises(InvalidRequest):
        confine(root / "escape" / "secret.png", [root])
    with pytest.raises(InvalidRequest):
        confine("escape/new-file.png", [root])
    with pytest.raises(InvalidRequest):
        confine("dangling.png", [root])


def test_symlinks_that_stay_inside_the_root_are_followed(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)

    assert confine("alias/x.png", [root]) == (root / "real" / "x.png").resolve()


def test_a_nul_byte_or_no_roots_is_refused(root: Path) -> None:
    with pytest.raises(InvalidRequest):
        confine("a\x00.png", [root])
    with pytest.raises(InvalidRequest):
        confine("a.png", [])


def test_safe_filenames_come_from_plain_ids_with_an_extension_per_variant() -> None:
    assert safe_filename("video_68d7512d", "video") == "video_68d7512d.mp4"
    assert safe_filename("video_68d7512d", "thumbnail") == "video_68d7512d.thumbnail.webp"
    assert safe_filename("video_68d7512d", "spritesheet") == "video_68d7512d.spritesheet.jpg"


@pytest.mark.parametrize(
    "video_id", ["../../etc/passwd", "a/b", "-rf", "", "CON", "vidéo", "x" * 129, "a\nb"]
)
def test_unsafe_ids_are_hashed_into_a_plain_name(video_id: str) -> None:
    name = safe_filename(video_id, "video")

    assert name.startswith("id-")
    assert name.endswith(".mp4")
    assert "/" not in name
    assert safe_filename(video_id, "video") == name


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        safe_filename("video_1", "exe")
    assert caught.value.param == "variant"


# ---- one atomic writer for downloads, media and the emulator store --------------------------

_renames: list[tuple[str, str]] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _renames is not None and event == "os.rename":
        _renames.append((str(args[0]), str(args[1])))


sys.addaudithook(_audit)


@pytest.fixture
def renames() -> Iterator[list[tuple[str, str]]]:
    """Every rename made while the test runs (os.replace raises the `os.rename` audit event)."""
    global _renames
    _renames = []
    try:
        yield _renames
    finally:
        _renames = None


def _written_by_the_one_writer(dest: Path, renames: list[tuple[str, str]]) -> None:
    (source,) = [src for src, dst in renames if Path(dst) == dest]
    assert Path(source).parent == dest.parent
    assert Path(source).name.startswith(f".{dest.name}.") and source.endswith(".part")
    assert stat.S_IMODE(dest.stat().st_mode) == PRIVATE_FILE_MODE
    assert [p for p in dest.parent.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.anyio
async def test_downloads_media_and_the_emulator_store_all_write_through_the_one_atomic_writer(
    tmp_path: Path, renames: list[tuple[str, str]]
) -> None:
    store = EmulatorStore(tmp_path / "emulator")
    store.save_input("ref.png", b"png bytes")
    _written_by_the_one_writer(store.input_path("ref.png"), renames)

    clip = tmp_path / "media" / "clip.mp4"
    write_h264(clip, [Image.new("RGB", (32, 32), "red")] * 4, width=32, height=32, fps=8)
    _written_by_the_one_writer(clip, renames)
    assert probe(clip).seconds == pytest.approx(0.5)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1000

    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=body()))
    async with httpx2.AsyncClient(transport=transport, base_url="http://backend/v1") as http:
        dest = tmp_path / "downloads" / "video_1.mp4"
        await VideosClient(http).download_content("video_1", dest)
    _written_by_the_one_writer(dest, renames)
    assert dest.stat().st_size == 4000
