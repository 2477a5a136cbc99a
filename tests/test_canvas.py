"""The YUV canvas the emulator draws on: blending there must look like blending in RGB."""

from __future__ import annotations

from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

from sora_mcp.emulator.canvas import blend, gradient_planes, layer_of, mask_layer, planes_of


def picture(size: tuple[int, int]) -> Image.Image:
    image = ImageOps.colorize(Image.linear_gradient("L").resize(size), (10, 30, 120), (250, 200, 40))
    ImageDraw.Draw(image).rectangle((10, 10, size[0] // 2, size[1] // 2), fill=(220, 20, 60))
    return image


def worst_channel_mean(a: Image.Image, b: Image.Image) -> float:
    return max(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


def sprite() -> Image.Image:
    image = Image.new("RGBA", (61, 45))
    draw = ImageDraw.Draw(image)
    draw.ellipse((0, 0, 60, 44), fill=(40, 220, 90, 200))
    draw.rectangle((20, 10, 40, 30), fill=(250, 250, 250, 255))
    return image


def test_planes_of_a_picture_decode_back_to_the_same_picture() -> None:
    image = picture((96, 54))

    assert worst_channel_mean(planes_of(image).to_image(), image) < 3


def test_a_layer_blended_in_yuv_matches_the_same_layer_composited_in_rgb() -> None:
    background, layer = picture((96, 54)), sprite()
    expected = background.convert("RGBA")
    expected.alpha_composite(layer, (20, 4))

    planes = planes_of(background)
    blend(planes, layer_of(layer), (20, 4))

    # 4:2:0 loses detail at sharp colour edges whatever is drawn; blending may add almost nothing.
    inherent = worst_channel_mean(planes_of(expected.convert("RGB")).to_image(), expected)
    assert worst_channel_mean(planes.to_image(), expected) < inherent + 1


def test_a_layer_partly_outside_the_picture_or_its_clip_is_cut_at_the_edge() -> None:
    background = picture((96, 54))
    planes = planes_of(background)

    blend(planes, layer_of(sprite()), (70, 30), clip=(0, 0, 80, 54))

    result = planes.to_image()
    right = (82, 0, 96, 54)  # outside the clip: untouched
    assert worst_channel_mean(result.crop(right), background.crop(right)) < 3
    assert worst_channel_mean(result.crop((72, 32, 80, 54)), background.crop((72, 32, 80, 54))) > 20


def test_text_blended_as_a_mask_matches_text_drawn_in_rgb() -> None:
    background = picture((96, 54))
    mask = Image.new("L", (80, 30))
    ImageDraw.Draw(mask).text((2, 2), "00:01.25", fill=255)
    expected = background.copy()
    expected.paste((255, 255, 255), (8, 12), mask)

    planes = planes_of(background)
    blend(planes, mask_layer(mask, (255, 255, 255)), (8, 12))

    assert worst_channel_mean(planes.to_image(), expected) < 4


def test_a_gradient_is_made_directly_in_yuv_as_a_colourised_gradient_would_be() -> None:
    size, top, bottom = (96, 54), (30, 10, 80), (200, 140, 60)
    expected = ImageOps.colorize(
        Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR), top, bottom
    )

    assert worst_channel_mean(gradient_planes(size, top, bottom).to_image(), expected) < 4
