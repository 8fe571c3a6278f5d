"""Images and videos of the synthetic platform, rendered with PIL (no assets, no network).

Each topic (and each cross-author theme) has a scene painter (palette + shapes + texture: a plate on a wooden table for
cooking, a striped pitch with a ball for football, a planet among stars for space, ...) and a
motion pattern for videos (rotate, pan, bounce, zoom, shake, pulse). Scenes are randomised per
post (positions, counts, colour jitter), so an ImageNet CNN sees topic-separable but varied
pictures, and a frame-difference feature sees topic-specific motion.

    img = render_scene(rng, "cats", 224)                 # PIL RGB (224, 224)
    write_jpeg(img, path, quality=85)
    write_video(rng, "space", path, size=112, frames=16, fps=12)
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]


def _jit(rng: np.random.Generator, c: RGB, amount: int = 20) -> RGB:
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)  # type: ignore[return-value]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _vgradient(size: int, top: RGB, bottom: RGB) -> Image.Image:
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    col = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)  # (H, 1, 3)
    return Image.fromarray(np.repeat(col, size, axis=1).astype(np.uint8), "RGB")


# ---------------------------------------------------------------- scene painters (one per topic)
def _cooking(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s), _jit(rng, (150, 95, 50)))
    d = ImageDraw.Draw(img)
    for y in range(0, s, max(4, s // 28)):  # wood grain
        d.line([(0, y + rng.integers(-2, 3)), (s, y + rng.integers(-2, 3))], fill=_jit(rng, (120, 72, 35), 15), width=2)
    cx, cy, r = s * _u(rng, 0.4, 0.6), s * _u(rng, 0.4, 0.6), s * _u(rng, 0.3, 0.4)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_jit(rng, (240, 240, 235), 8), outline=(200, 200, 200), width=3)
    d.ellipse([cx - r * 0.75, cy - r * 0.75, cx + r * 0.75, cy + r * 0.75], fill=_jit(rng, (250, 250, 245), 5))
    foods = [(200, 60, 30), (230, 160, 40), (90, 160, 50), (240, 210, 120), (160, 40, 40)]
    for _ in range(int(rng.integers(5, 12))):
        a, rr = _u(rng, 0, 2 * math.pi), r * _u(rng, 0, 0.55)
        fx, fy, fr = cx + rr * math.cos(a), cy + rr * math.sin(a), r * _u(rng, 0.1, 0.25)
        d.ellipse([fx - fr, fy - fr * 0.7, fx + fr, fy + fr * 0.7], fill=_jit(rng, foods[int(rng.integers(len(foods)))]))
    fx = cx + r * 1.15
    d.rectangle([fx, cy - r, fx + s * 0.03, cy + r], fill=(190, 190, 200))  # fork
    return img


def _football(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s))
    d = ImageDraw.Draw(img)
    g1, g2 = _jit(rng, (40, 140, 50), 12), _jit(rng, (55, 165, 60), 12)
    w = s // int(rng.integers(5, 9))
    for i, x in enumerate(range(0, s, w)):
        d.rectangle([x, 0, x + w, s], fill=g1 if i % 2 else g2)
    lw = max(2, s // 60)
    mx = s * _u(rng, 0.3, 0.7)
    d.line([(mx, 0), (mx, s)], fill=(245, 245, 245), width=lw)
    cr = s * _u(rng, 0.2, 0.3)
    d.ellipse([mx - cr, s / 2 - cr, mx + cr, s / 2 + cr], outline=(245, 245, 245), width=lw)
    bx, by, br = s * _u(rng, 0.2, 0.8), s * _u(rng, 0.25, 0.8), s * _u(rng, 0.07, 0.12)
    d.ellipse([bx - br, by - br, bx + br, by + br], fill=(250, 250, 250), outline=(20, 20, 20), width=2)
    for k in range(5):  # pentagon patches
        a = k * 2 * math.pi / 5 + _u(rng, 0, 1)
        px, py, pr = bx + br * 0.55 * math.cos(a), by + br * 0.55 * math.sin(a), br * 0.22
        d.regular_polygon((px, py, pr), 5, fill=(20, 20, 20))
    d.regular_polygon((bx, by, br * 0.25), 5, fill=(20, 20, 20))
    return img


def _travel(rng: np.random.Generator, s: int) -> Image.Image:
    img = _vgradient(s, _jit(rng, (70, 140, 230)), _jit(rng, (200, 225, 250)))
    d = ImageDraw.Draw(img)
    sx, sy, sr = s * _u(rng, 0.1, 0.9), s * _u(rng, 0.08, 0.3), s * _u(rng, 0.05, 0.1)
    d.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=_jit(rng, (255, 220, 90), 10))
    horizon = s * _u(rng, 0.6, 0.72)
    for _ in range(int(rng.integers(2, 5))):
        px, h, w = s * _u(rng, -0.1, 1.1), s * _u(rng, 0.25, 0.5), s * _u(rng, 0.25, 0.45)
        top = horizon - h
        d.polygon([(px - w, horizon), (px, top), (px + w, horizon)], fill=_jit(rng, (95, 105, 130)))
        d.polygon([(px - w * 0.22, top + h * 0.22), (px, top), (px + w * 0.22, top + h * 0.22)], fill=(250, 250, 250))
    d.rectangle([0, horizon, s, s], fill=_jit(rng, (30, 110, 170)))
    for y in np.arange(horizon + 6, s, s / 14):  # waves
        x0 = _u(rng, 0, s * 0.3)
        d.line([(x0, y), (x0 + s * _u(rng, 0.2, 0.5), y)], fill=(170, 210, 240), width=2)
    return img


def _cats(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s), _jit(rng, (225, 205, 175)))
    d = ImageDraw.Draw(img)
    d.rectangle([0, s * 0.78, s, s], fill=_jit(rng, (170, 120, 90)))
    fur = [(230, 140, 50), (120, 120, 125), (40, 40, 40), (245, 240, 230)][int(rng.integers(4))]
    fur = _jit(rng, fur, 15)
    cx, cy = s * _u(rng, 0.35, 0.65), s * _u(rng, 0.5, 0.6)
    bw, bh = s * _u(rng, 0.25, 0.32), s * _u(rng, 0.18, 0.24)
    d.ellipse([cx - bw, cy, cx + bw, cy + 2 * bh], fill=fur)  # body
    hr = s * _u(rng, 0.15, 0.19)
    hx, hy = cx + _u(rng, -0.1, 0.1) * s, cy - hr * 0.2
    for sgn in (-1, 1):  # ears
        d.polygon([(hx + sgn * hr * 0.9, hy - hr * 0.2), (hx + sgn * hr * 0.75, hy - hr * 1.45), (hx + sgn * hr * 0.2, hy - hr * 0.85)], fill=fur)
    d.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=fur)
    eye = _jit(rng, (90, 190, 80), 30)
    for sgn in (-1, 1):
        ex, ey, er = hx + sgn * hr * 0.4, hy - hr * 0.1, hr * 0.2
        d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=eye)
        d.ellipse([ex - er * 0.3, ey - er, ex + er * 0.3, ey + er], fill=(10, 10, 10))
        for k in (-1, 0, 1):  # whiskers
            d.line([(hx + sgn * hr * 0.3, hy + hr * 0.35), (hx + sgn * hr * 1.5, hy + hr * (0.3 + 0.2 * k))], fill=(30, 30, 30), width=1)
    d.polygon([(hx - hr * 0.12, hy + hr * 0.2), (hx + hr * 0.12, hy + hr * 0.2), (hx, hy + hr * 0.35)], fill=(230, 120, 140))
    for k in range(int(rng.integers(0, 5))):  # stripes
        x = cx - bw * 0.6 + k * bw * 0.3
        d.line([(x, cy + bh * 0.3), (x + bw * 0.1, cy + bh * 1.2)], fill=tuple(max(0, v - 60) for v in fur), width=max(2, s // 50))
    return img


def _music(rng: np.random.Generator, s: int) -> Image.Image:
    img = _vgradient(s, _jit(rng, (40, 10, 60)), _jit(rng, (10, 5, 25)))
    d = ImageDraw.Draw(img)
    lx = s * _u(rng, 0.2, 0.8)
    d.polygon([(lx, 0), (lx - s * 0.3, s * 0.7), (lx + s * 0.3, s * 0.7)], fill=_jit(rng, (110, 70, 140)))  # spotlight
    y0 = s * _u(rng, 0.68, 0.75)
    kw = s / int(rng.integers(9, 14))
    for i in range(int(s / kw) + 1):  # piano keys
        d.rectangle([i * kw, y0, (i + 1) * kw - 2, s], fill=(245, 245, 240))
    for i in range(int(s / kw) + 1):
        if i % 7 not in (2, 6):
            d.rectangle([(i + 0.65) * kw, y0, (i + 1.35) * kw, y0 + (s - y0) * 0.6], fill=(15, 15, 15))
    ystaff = s * _u(rng, 0.15, 0.3)
    for k in range(5):  # staff lines
        d.line([(0, ystaff + k * s * 0.035), (s, ystaff + k * s * 0.035)], fill=(220, 220, 230), width=1)
    for _ in range(int(rng.integers(3, 7))):  # notes
        nx, ny, nr = s * _u(rng, 0.05, 0.9), ystaff + s * _u(rng, -0.02, 0.16), s * 0.03
        col = _jit(rng, (250, 200, 60), 40)
        d.ellipse([nx - nr * 1.3, ny - nr, nx + nr * 1.3, ny + nr], fill=col)
        d.line([(nx + nr * 1.2, ny), (nx + nr * 1.2, ny - s * 0.12)], fill=col, width=max(2, s // 80))
    return img


def _tech(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s), _jit(rng, (20, 90, 45), 15))
    d = ImageDraw.Draw(img)
    step = s // int(rng.integers(8, 14))
    for _ in range(int(rng.integers(10, 22))):  # traces
        x, y = int(rng.integers(0, s // step)) * step, int(rng.integers(0, s // step)) * step
        x2 = x + int(rng.integers(-4, 5)) * step
        y2 = y + int(rng.integers(-4, 5)) * step
        d.line([(x, y), (x2, y), (x2, y2)], fill=_jit(rng, (200, 170, 60), 20), width=2)
        d.ellipse([x2 - 3, y2 - 3, x2 + 3, y2 + 3], fill=(220, 200, 120))
    for _ in range(int(rng.integers(1, 4))):  # chips
        cw, ch = s * _u(rng, 0.15, 0.3), s * _u(rng, 0.12, 0.25)
        x, y = s * _u(rng, 0.05, 0.95) - cw / 2, s * _u(rng, 0.05, 0.95) - ch / 2
        for k in range(6):
            px = x + (k + 0.5) * cw / 6
            d.line([(px, y - 5), (px, y + ch + 5)], fill=(200, 200, 205), width=2)
        d.rectangle([x, y, x + cw, y + ch], fill=_jit(rng, (25, 25, 30), 8))
    return img


def _fitness(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s), _jit(rng, (70, 70, 75), 10))
    d = ImageDraw.Draw(img)
    t = s // 4
    for i in range(0, s, t):  # rubber floor tiles
        for j in range(0, s, t):
            d.rectangle([i + 1, j + 1, i + t - 1, j + t - 1], fill=_jit(rng, (55, 55, 60), 6))
    for _ in range(int(rng.integers(1, 3))):  # dumbbells
        cx, cy, L = s * _u(rng, 0.25, 0.75), s * _u(rng, 0.2, 0.8), s * _u(rng, 0.25, 0.4)
        plate = _jit(rng, [(200, 30, 30), (30, 30, 30), (30, 60, 200)][int(rng.integers(3))], 15)
        d.rectangle([cx - L / 2, cy - s * 0.015, cx + L / 2, cy + s * 0.015], fill=(190, 190, 195))
        for sgn in (-1, 1):
            px, ph, pw = cx + sgn * L / 2, s * _u(rng, 0.1, 0.16), s * 0.05
            d.rounded_rectangle([px - pw / 2, cy - ph, px + pw / 2, cy + ph], radius=4, fill=plate)
    kx, ky, kr = s * _u(rng, 0.15, 0.85), s * _u(rng, 0.6, 0.85), s * _u(rng, 0.08, 0.12)  # kettlebell
    d.ellipse([kx - kr * 0.6, ky - kr * 1.9, kx + kr * 0.6, ky - kr * 0.7], outline=(30, 30, 30), width=max(3, s // 40))
    d.ellipse([kx - kr, ky - kr, kx + kr, ky + kr], fill=_jit(rng, (230, 120, 20), 20))
    return img


def _fashion(rng: np.random.Generator, s: int) -> Image.Image:
    img = _vgradient(s, _jit(rng, (250, 200, 220)), _jit(rng, (230, 150, 190)))
    d = ImageDraw.Draw(img)
    d.line([(0, s * 0.12), (s, s * 0.12)], fill=(120, 120, 120), width=3)  # clothes rail
    for _ in range(int(rng.integers(1, 3))):
        cx, w = s * _u(rng, 0.25, 0.75), s * _u(rng, 0.12, 0.2)
        top, bottom = s * 0.2, s * _u(rng, 0.8, 0.95)
        col = _jit(rng, [(180, 20, 60), (20, 20, 30), (240, 240, 240), (40, 60, 150), (230, 180, 40)][int(rng.integers(5))], 20)
        d.line([(cx, s * 0.12), (cx - w * 0.6, top), (cx + w * 0.6, top), (cx, s * 0.12)], fill=(90, 90, 90), width=2)  # hanger
        d.polygon([(cx - w * 0.6, top), (cx + w * 0.6, top), (cx + w * 0.45, top + (bottom - top) * 0.35),
                   (cx + w * 1.3, bottom), (cx - w * 1.3, bottom), (cx - w * 0.45, top + (bottom - top) * 0.35)], fill=col)
        pat = tuple(255 - v for v in col)
        if rng.random() < 0.5:  # polka dots
            for _ in range(12):
                px, py = cx + _u(rng, -0.8, 0.8) * w, _u(rng, top + 0.4 * (bottom - top), bottom - 4)
                d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=pat)
        else:
            d.rectangle([cx - w * 0.45, top + (bottom - top) * 0.33, cx + w * 0.45, top + (bottom - top) * 0.38], fill=pat)  # belt
    return img


def _gardening(rng: np.random.Generator, s: int) -> Image.Image:
    img = _vgradient(s, _jit(rng, (150, 200, 240)), _jit(rng, (190, 225, 200)))
    d = ImageDraw.Draw(img)
    ground = s * _u(rng, 0.65, 0.75)
    d.rectangle([0, ground, s, s], fill=_jit(rng, (100, 65, 35), 15))
    for _ in range(int(rng.integers(3, 7))):
        x, h = s * _u(rng, 0.05, 0.95), s * _u(rng, 0.25, 0.5)
        d.line([(x, ground), (x, ground - h)], fill=(40, 120, 40), width=max(2, s // 70))
        for k in range(2):  # leaves
            ly, sgn = ground - h * _u(rng, 0.2, 0.6), (-1) ** k
            d.ellipse([x + min(0, sgn * s * 0.08), ly - s * 0.02, x + max(0, sgn * s * 0.08), ly + s * 0.02], fill=_jit(rng, (60, 160, 50), 20))
        fx, fy, pr = x, ground - h, s * _u(rng, 0.03, 0.05)
        petal = _jit(rng, [(230, 50, 60), (250, 210, 40), (170, 80, 200), (250, 140, 180)][int(rng.integers(4))], 15)
        for k in range(int(rng.integers(5, 9))):
            a = k * 2 * math.pi / 8
            px, py = fx + pr * 1.2 * math.cos(a), fy + pr * 1.2 * math.sin(a)
            d.ellipse([px - pr, py - pr, px + pr, py + pr], fill=petal)
        d.ellipse([fx - pr * 0.8, fy - pr * 0.8, fx + pr * 0.8, fy + pr * 0.8], fill=(240, 200, 40))
    return img


def _space(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s), _jit(rng, (8, 8, 25), 6))
    d = ImageDraw.Draw(img)
    for _ in range(int(s * s / 350)):
        x, y, r = _u(rng, 0, s), _u(rng, 0, s), _u(rng, 0.3, 1.4)
        b = int(rng.integers(150, 256))
        d.ellipse([x - r, y - r, x + r, y + r], fill=(b, b, min(255, b + 20)))
    cx, cy, r = s * _u(rng, 0.3, 0.7), s * _u(rng, 0.3, 0.7), s * _u(rng, 0.15, 0.25)
    base = _jit(rng, [(210, 150, 90), (90, 130, 220), (200, 80, 60), (180, 180, 160)][int(rng.integers(4))], 20)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=base)
    for k in range(-3, 4):  # bands
        y = cy + k * r * 0.25
        half = math.sqrt(max(r * r - (y - cy) ** 2, 0))
        d.line([(cx - half, y), (cx + half, y)], fill=tuple(max(0, v - 40) for v in base), width=max(2, s // 60))
    if rng.random() < 0.7:
        d.ellipse([cx - r * 1.8, cy - r * 0.35, cx + r * 1.8, cy + r * 0.35], outline=_jit(rng, (220, 210, 180)), width=max(2, s // 50))
    return img


# ---------------------------------------------------------------- theme painters (synth_text.THEME_VOCAB)
def _heatwave(rng: np.random.Generator, s: int) -> Image.Image:
    img = _vgradient(s, _jit(rng, (250, 120, 30)), _jit(rng, (250, 210, 120)))
    d = ImageDraw.Draw(img)
    sx, sy, sr = s * _u(rng, 0.25, 0.75), s * _u(rng, 0.15, 0.35), s * _u(rng, 0.14, 0.2)
    for k in range(12):  # rays
        a = k * math.pi / 6 + _u(rng, 0, 0.3)
        d.line([(sx + sr * 1.2 * math.cos(a), sy + sr * 1.2 * math.sin(a)),
                (sx + sr * 1.8 * math.cos(a), sy + sr * 1.8 * math.sin(a))], fill=(255, 240, 150), width=max(2, s // 60))
    d.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=_jit(rng, (255, 245, 180), 8))
    ground = s * _u(rng, 0.62, 0.72)
    d.rectangle([0, ground, s, s], fill=_jit(rng, (200, 160, 90), 15))
    for _ in range(int(rng.integers(6, 12))):  # cracks in the dry ground
        x, y = s * _u(rng, 0, 1), _u(rng, ground + 4, s)
        d.line([(x, y), (x + s * _u(rng, -0.1, 0.1), y + s * _u(rng, 0.02, 0.08))], fill=(120, 85, 45), width=2)
    for k in range(4):  # heat shimmer
        y = ground - s * (0.05 + 0.05 * k)
        d.line([(x, y + 3 * math.sin(x / 6)) for x in range(0, s, 4)], fill=(255, 200, 120), width=1)
    return img


def _snowstorm(rng: np.random.Generator, s: int) -> Image.Image:
    img = _vgradient(s, _jit(rng, (150, 160, 175), 10), _jit(rng, (225, 230, 240), 8))
    d = ImageDraw.Draw(img)
    ground = s * _u(rng, 0.65, 0.78)
    for _ in range(int(rng.integers(2, 5))):  # bare trees
        x, h = s * _u(rng, 0.05, 0.95), s * _u(rng, 0.3, 0.55)
        d.line([(x, ground), (x, ground - h)], fill=(60, 55, 55), width=max(2, s // 70))
        for k in range(3):
            y = ground - h * (0.4 + 0.2 * k)
            d.line([(x, y), (x + (-1) ** k * s * 0.07, y - s * 0.06)], fill=(60, 55, 55), width=2)
    d.rectangle([0, ground, s, s], fill=_jit(rng, (245, 248, 252), 4))
    slant = _u(rng, -0.6, 0.6)
    for _ in range(int(s * s / 180)):  # flakes, blown at an angle
        x, y, r = _u(rng, 0, s), _u(rng, 0, s), _u(rng, 0.8, 2.2)
        d.line([(x, y), (x + slant * 4 * r, y + 4 * r)], fill=(255, 255, 255), width=max(1, int(r)))
    return img


def _blackout(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s), _jit(rng, (12, 14, 30), 6))
    d = ImageDraw.Draw(img)
    x = 0.0
    while x < s:  # a skyline, nearly every window dark
        w, h = s * _u(rng, 0.1, 0.2), s * _u(rng, 0.25, 0.6)
        d.rectangle([x, s - h, x + w, s], fill=_jit(rng, (28, 28, 40), 6))
        for wy in np.arange(s - h + 6, s - 6, s / 18):
            for wx in np.arange(x + 4, x + w - 6, s / 22):
                if rng.random() < 0.04:
                    d.rectangle([wx, wy, wx + 3, wy + 4], fill=(240, 200, 90))
        x += w + 2
    cx, cy = s * _u(rng, 0.3, 0.7), s * _u(rng, 0.45, 0.6)  # a candle and its glow
    for r, c in ((0.22, (60, 45, 25)), (0.14, (110, 80, 35)), (0.07, (200, 150, 60))):
        d.ellipse([cx - s * r, cy - s * r, cx + s * r, cy + s * r], fill=c)
    d.rectangle([cx - s * 0.025, cy, cx + s * 0.025, cy + s * 0.2], fill=(235, 230, 215))
    d.ellipse([cx - s * 0.015, cy - s * 0.05, cx + s * 0.015, cy], fill=(255, 230, 120))
    return img


def _election(rng: np.random.Generator, s: int) -> Image.Image:
    img = Image.new("RGB", (s, s), _jit(rng, (235, 235, 240), 8))
    d = ImageDraw.Draw(img)
    stripe = s / 13
    for k in range(int(rng.integers(4, 8))):  # bunting stripes
        d.rectangle([0, k * stripe, s, (k + 0.5) * stripe], fill=(200, 30, 40) if k % 2 else (30, 50, 140))
    bx, by, bw, bh = s * _u(rng, 0.3, 0.7), s * _u(rng, 0.62, 0.72), s * _u(rng, 0.22, 0.3), s * _u(rng, 0.18, 0.24)
    d.rectangle([bx - bw, by - bh, bx + bw, by + bh], fill=_jit(rng, (40, 70, 170), 15))  # ballot box
    d.rectangle([bx - bw * 0.5, by - bh - 3, bx + bw * 0.5, by - bh + 3], fill=(15, 15, 20))  # its slot
    px, py = bx + _u(rng, -0.3, 0.3) * bw, by - bh - s * 0.15  # a ballot going in, with a tick
    d.rectangle([px - s * 0.08, py - s * 0.1, px + s * 0.08, py + s * 0.1], fill=(252, 252, 250), outline=(80, 80, 80))
    d.line([(px - s * 0.04, py), (px - s * 0.01, py + s * 0.04), (px + s * 0.05, py - s * 0.05)], fill=(20, 120, 40), width=max(2, s // 50))
    return img


PAINTERS: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
    "cooking": _cooking, "football": _football, "travel": _travel, "cats": _cats, "music": _music,
    "tech": _tech, "fitness": _fitness, "fashion": _fashion, "gardening": _gardening, "space": _space,
    "heatwave": _heatwave, "snowstorm": _snowstorm, "blackout": _blackout, "election": _election,
}
MOTIONS: dict[str, str] = {
    "cooking": "rotate", "football": "bounce", "travel": "pan_x", "cats": "shake", "music": "pulse",
    "tech": "pan_y", "fitness": "lift", "fashion": "zoom_out", "gardening": "zoom_in", "space": "rotate",
    "heatwave": "pulse", "snowstorm": "pan_y", "blackout": "shake", "election": "zoom_in",
}


def render_scene(rng: np.random.Generator, topic: str, size: int) -> Image.Image:
    """A random `size` x `size` RGB picture of `topic` (a topic or a theme)."""
    return PAINTERS[topic](rng, size)


def brighten(img: Image.Image, amount: float) -> Image.Image:
    """`img` with brightness scaled by (1 + amount); amount 0 returns it unchanged."""
    if amount == 0:
        return img
    from PIL import ImageEnhance

    return ImageEnhance.Brightness(img).enhance(1.0 + float(amount))


def write_jpeg(img: Image.Image, path: Path, quality: int = 85) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False)
    path.write_bytes(buf.getvalue())


# ---------------------------------------------------------------- videos
def video_frames(rng: np.random.Generator, topic: str, size: int, n_frames: int) -> list[Image.Image]:
    """`n_frames` frames (size x size) of a topic scene moving with the topic's motion."""
    motion = MOTIONS[topic]
    big = int(round(size * 1.5))
    base = render_scene(rng, topic, big)
    m = big - size  # crop slack
    speed = _u(rng, 0.7, 1.3) * (1 if rng.random() < 0.5 else -1)
    ball = _jit(rng, (250, 250, 250), 5)
    frames = []
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)  # 0..1
        if motion == "rotate":
            f = base.rotate(180 * t * speed, resample=Image.BILINEAR).crop((m // 2, m // 2, m // 2 + size, m // 2 + size))
        elif motion == "pan_x":
            x = int(m * (t if speed > 0 else 1 - t))
            f = base.crop((x, m // 2, x + size, m // 2 + size))
        elif motion == "pan_y":
            y = int(m * (t if speed > 0 else 1 - t))
            f = base.crop((m // 2, y, m // 2 + size, y + size))
        elif motion == "lift":  # up and down twice
            y = int(m * 0.5 * (1 + math.sin(4 * math.pi * t)))
            f = base.crop((m // 2, y, m // 2 + size, y + size))
        elif motion == "shake":
            x, y = int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1))
            f = base.crop((x, y, x + size, y + size))
        elif motion in ("zoom_in", "zoom_out", "pulse"):
            z = {"zoom_in": t, "zoom_out": 1 - t, "pulse": 0.5 * (1 + math.sin(6 * math.pi * t))}[motion]
            c = big - (big - size * 0.6) * z  # crop side: big -> 0.6 * size
            o = (big - c) / 2
            f = base.crop((int(o), int(o), int(o + c), int(o + c))).resize((size, size), Image.BILINEAR)
        elif motion == "bounce":
            f = base.crop((m // 2, m // 2, m // 2 + size, m // 2 + size)).copy()
            d = ImageDraw.Draw(f)
            r = size * 0.09
            bx = size * (0.15 + 0.7 * t) if speed > 0 else size * (0.85 - 0.7 * t)
            by = size - r - (size - 2.5 * r) * abs(math.sin(3 * math.pi * t))
            d.ellipse([bx - r, by - r, bx + r, by + r], fill=ball, outline=(20, 20, 20), width=2)
        else:  # pragma: no cover - MOTIONS is closed
            raise AssertionError(motion)
        frames.append(f.convert("RGB"))
    return frames


def write_video(
    rng: np.random.Generator,
    topic: str,
    path: Path,
    size: int = 112,
    frames: int = 16,
    fps: int = 12,
    codec: str = "mpeg4",
) -> None:
    """Encode a short topic clip to MP4. Single-threaded and metadata-free, so the bytes are a
    function of the inputs (same seed -> same file)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = video_frames(rng, topic, size, frames)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        if codec == "libx264":
            # x264 picks its own thread count unless told: frame threads make the bytes load-dependent
            stream.options = {"crf": "28", "preset": "veryfast", "threads": "1"}
        else:
            stream.bit_rate = 200_000
        for img in imgs:
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    path.write_bytes(buf.getvalue())
