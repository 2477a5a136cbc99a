"""The people's commands and doctor in this process (`cli.main`), for what a person reads: the
human output of every command, the doctor's report, and the backend checks against a real
emulator on a socket. (test_cli_people.py and test_cli_doctor.py drive the console script.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from procs import child_env, free_port, serving
from sora_mcp.cli import main
from sora_mcp.media.video import probe


@pytest.fixture(autouse=True)
def fast_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_MCP_BACKEND", "emulator")
    monkeypatch.setenv("SORA_MCP_EMULATOR_SPEED", "400")


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    return captured.out, captured.err


def last_id(capsys: pytest.CaptureFixture[str]) -> str:
    out, _ = run(capsys, "list", "--json", "--limit", "1")
    return str(json.loads(out)["videos"][0]["id"])


def test_every_command_answers_a_person_in_short_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, err = run(capsys, "generate", "A red kite over dunes", "--size", "1280x720")
    vid = out.split()[0]
    assert out.splitlines()[1].strip() == str(tmp_path / "out" / f"{vid}.mp4")
    assert "started " + vid in err
    assert "est. $0.40" in err

    out, err = run(capsys, "extend", vid, "the kite dives", "--seconds", "4")
    extended = out.split()[0]
    assert "5 extension(s) and 112 s left" in err
    assert probe(Path(out.splitlines()[1].strip())).seconds == pytest.approx(8.0, abs=0.01)
    out, _ = run(capsys, "edit", vid, "make the kite blue")
    edited = out.split()[0]

    out, _ = run(capsys, "show", vid)
    assert f"extension: {extended} (completed)" in out
    assert f"edit: {edited} (completed)" in out
    assert "prompt: A red kite over dunes" in out
    out, _ = run(capsys, "show", edited)
    assert f"made from: {vid} (edit, completed)" in out

    out, err = run(capsys, "list", "--text", "kite")
    assert [line.split()[0] for line in out.splitlines()] == [edited, extended, vid]
    assert "3 video(s)" in err


def test_no_wait_returns_at_once_and_says_how_to_follow(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = run(capsys, "generate", "A slow tide", "--seconds", "20", "--no-wait")
    vid = out.split()[0]
    assert out.split()[1] in ("queued", "in_progress")
    assert f"sora-mcp show {vid} --wait" in err
    out, _ = run(capsys, "show", vid, "--wait")
    assert out.split()[1] == "completed"


def test_batches_report_items_by_custom_id_and_can_be_followed_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _ = run(capsys, "batch", "--prompt", "a teal kite", "--prompt", "a red kite", "--dry-run")
    assert out.strip().startswith("2 item(s), native mode, est. $0.80")
    out, err = run(capsys, "batch", "--prompt", "a teal kite", "--prompt", "a red kite", "--mode", "direct")
    assert "(direct mode)" in err
    assert [line.split()[0] for line in out.splitlines() if line.startswith("[")] == ["[item-1]", "[item-2]"]
    batch_id = out.split()[1]
    out, _ = run(capsys, "batch", "--follow", batch_id)
    assert out.splitlines()[0] == f"batch {batch_id} (direct): completed"
    _, err = run(capsys, "batch", "--follow", "nope", code=1)
    assert "nope" in err


def test_open_without_a_viewer_prints_the_path_and_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run(capsys, "generate", "A boat")
    vid = last_id(capsys)
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    out, err = run(capsys, "open", vid, "--variant", "spritesheet", code=1)
    path = Path(out.strip())
    assert path.suffix == ".jpg"
    assert path.is_file()
    assert "No program to open files" in err


def test_doctor_prints_each_section_and_the_client_snippets(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(capsys, "doctor")
    for heading in ("Configuration", "Backend", "Folders", "Media", "Client configuration"):
        assert f"\n{heading}" in out
    for client in ("Claude Desktop", "Claude Code", "Cursor", "VS Code"):
        assert f"  {client} — " in out
    assert '"mcpServers"' in out
    assert out.rstrip().endswith("Everything checked is in order.")


def test_doctor_reaches_a_remote_backend_and_reports_a_refused_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with serving(["emulator", "--api-key", "sk-right"], child_env(tmp_path / "backend")) as port:
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
        monkeypatch.setenv("SORA_MCP_BACKEND", "remote")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
        out, _ = run(capsys, "doctor", "--json")
        (reach,) = [c for c in json.loads(out)["checks"] if c["name"].startswith("http://")]
        assert reach["status"] == "ok"

        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        out, _ = run(capsys, "doctor", "--json", code=1)
        (reach,) = [c for c in json.loads(out)["checks"] if c["name"].startswith("http://")]
        assert reach["status"] == "fail"
        assert reach["detail"].startswith("reached, but the key was refused")
        assert "sk-wrong" not in out


def test_doctor_reports_folders_it_cannot_write_and_missing_input_folders(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    output = tmp_path / "a-file-not-a-folder"
    output.write_text("")
    monkeypatch.setenv("SORA_MCP_OUTPUT_DIR", str(output))
    monkeypatch.setenv("SORA_MCP_INPUT_DIRS", str(tmp_path / "missing"))
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    out, _ = run(capsys, "doctor", code=1)
    assert "FAIL output" in out
    assert "exists but is not a folder" in out
    assert "warn input" in out
    assert "1 problem(s) found." in out
