"""The server's `instructions`: the workflow an assistant should follow, and what backend it is on."""

from __future__ import annotations

from sora_mcp.config import Settings


def instructions(settings: Settings) -> str:
    backend = (
        "BACKEND: the built-in EMULATOR (no API key configured). Jobs, ids, progress and files behave like "
        "the real Videos API, but the MP4s are SIMULATED placeholders (prompt caption, timecode, "
        "'SIMULATED' mark) and nothing is billed. Say so to the user when showing results."
        if settings.is_emulator
        else f"BACKEND: {settings.backend_label} (real generations; every clip is billed)."
    )
    limits = []
    if settings.budget_daily_usd is not None:
        limits.append(f"${settings.budget_daily_usd:.2f} per day")
    if settings.budget_per_call_usd is not None:
        limits.append(f"${settings.budget_per_call_usd:.2f} per call")
    budget = (
        f"\nSPENDING LIMIT: {', '.join(limits)}; calls over it are refused before anything is sent."
        if limits
        else ""
    )
    wait = min(40, settings.max_wait_seconds)
    if settings.confirm_above_usd is not None:
        budget += (
            f"\nCONFIRMATION: calls estimated above ${settings.confirm_above_usd:.2f} ask the user first; if "
            "one answers not_confirmed with a confirm_token, show the quote, and only after the user "
            "agrees call again with the same arguments plus that confirm_token."
        )
    return f"""sora-mcp produces video clips through the OpenAI Videos (Sora 2) API format.
{backend}{budget}

Before writing shot prompts, read sora://guides (prompt anatomy, camera and light, sizes and
durations, image references, editing and extending, characters, sound, what is refused). The MCP
prompts (ad_variants, product_from_photo, multi_scene_story, recurring_character, iterate_by_edit)
plan whole workflows. sora://capabilities lists models, sizes, durations and prices.

Workflow:
1. generate(prompt, model, size, seconds[, image | start_from][, characters]) starts jobs and
   returns their ids at once, with the estimated cost and time. Clips take minutes on real backends.
2. get_video(video_id, wait_seconds={wait}) follows a job, sending progress while it waits; a call
   waits at most {settings.max_wait_seconds} s, so when it returns still_running=true, call it again
   with the same id — the job keeps running meanwhile.
3. Completed videos are downloaded automatically to {settings.output_dir}; download(video_id,
   variant) re-fetches or fetches the thumbnail / spritesheet.
4. Build on a completed clip: extend(video_id, prompt, seconds) continues it (the file is the
   stitched whole; at most 6 extensions and 120 s); edit(video_id, prompt) changes ONE thing;
   create_character(name, video_id | clip_path) makes a reusable non-human character to name in
   later prompts; generate(start_from=video_id) starts a new shot on its last frame.
5. For many clips at once: batch(requests or jsonl_path) returns a batch_id with the estimated
   total at once; get_batch(batch_id, wait_seconds={wait}) follows every item (call again while
   still_running) and downloads results.
6. list_videos / list_characters show everything made so far, across sessions, with lineage.
Never call generate again just because a wait ended: that starts (and bills) a second job.
To retry a call whose answer you did not get, repeat it with the same idempotency_key (every
billable tool takes one, e.g. a UUID per request): it returns the first call's job(s)
and sends nothing, on any server of this registry."""
