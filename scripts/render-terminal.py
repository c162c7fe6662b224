#!/usr/bin/env python3
"""Renders terminal text with ANSI colours (as `tmux capture-pane -e -p` prints it) to a PNG.

One pane:

    render-terminal.py --size 140x42 --title "orderflow demo" --pane 0,0,140,42:demo.ans -o demo.png

Several panes of one tmux window (positions and sizes from `tmux list-panes -F
'#{pane_left},#{pane_top},#{pane_width},#{pane_height}'`): the cells no pane covers are
tmux's borders and are drawn as lines; a pane's title, if given, is written on the border
row above it, as tmux's `pane-border-status top` does:

    render-terminal.py --size 160x48 --pane 0,1,160,30:a.ans:"orderflow analytics" \\
        --pane 0,32,80,16:b.ans:"orderflow produce" --pane 81,32,79,16:c.ans -o out.png

Understands SGR: bold, dim, italic, underline, reverse, the 16 ANSI colours, the 256-colour
palette and truecolor (`38;2;r;g;b` and `38:2::r:g:b`); other escape sequences are skipped.
Glyphs come from DejaVu Sans Mono, falling back per glyph to other installed fonts; box
drawing, block elements and braille are drawn as shapes, so lines join and bars fill their
cells exactly. Needs Pillow.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw, ImageFont

# A dark palette (after One Dark): default colours, then ANSI 0-15.
DEFAULT_FG = (208, 212, 220)
DEFAULT_BG = (26, 29, 35)
ANSI16 = [
    (40, 44, 52),  # black
    (224, 108, 117),  # red
    (152, 195, 121),  # green
    (229, 192, 123),  # yellow
    (97, 175, 239),  # blue
    (198, 120, 221),  # magenta
    (86, 182, 194),  # cyan
    (171, 178, 191),  # white (ratatui Gray)
    (106, 115, 135),  # bright black (ratatui DarkGray)
    (255, 128, 139),  # bright red
    (181, 232, 144),  # bright green
    (255, 213, 128),  # bright yellow
    (124, 196, 255),  # bright blue
    (224, 156, 245),  # bright magenta
    (127, 214, 224),  # bright cyan
    (255, 255, 255),  # bright white
]
BORDER = (86, 93, 110)
TITLE_FG = (171, 178, 191)
CHROME_BG = (40, 43, 51)
CHROME_EDGE = (14, 16, 20)
CHROME_TEXT = (160, 166, 180)
LIGHTS = [(255, 95, 86), (255, 189, 46), (39, 201, 63)]

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
MONO = os.path.join(FONT_DIR, "DejaVuSansMono.ttf")
MONO_BOLD = os.path.join(FONT_DIR, "DejaVuSansMono-Bold.ttf")
SANS_BOLD = os.path.join(FONT_DIR, "DejaVuSans-Bold.ttf")


def palette256(n: int) -> tuple[int, int, int]:
    if n < 16:
        return ANSI16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + 10 * (n - 232)
    return (v, v, v)


# A colour is None (the default), ("i", index) or ("rgb", (r, g, b)).
@dataclass(frozen=True)
class Style:
    fg: object = None
    bg: object = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False


@dataclass
class Cell:
    ch: str = " "
    style: Style = Style()
    wide_tail: bool = False  # the right half of a wide character


CSI = re.compile(r"\x1b\[([0-9;:?<>=]*)([ -/]*)([@-~])")
OSC = re.compile(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)")
OTHER_ESC = re.compile(r"\x1b[()][0-9A-Za-z]|\x1b[=>78DEHMNOZc]")


def apply_sgr(style: Style, params: str) -> Style:
    if params == "":
        return Style()
    parts = params.split(";")
    i = 0
    s = style
    while i < len(parts):
        p = parts[i]
        if ":" in p:  # 38:2::r:g:b, 38:5:n, 4:3 (curly underline)
            sub = [x for x in p.split(":")]
            head = int(sub[0] or 0)
            if head in (38, 48) and len(sub) >= 3:
                if sub[1] == "5":
                    colour = ("i", int(sub[2]))
                else:
                    rgb = [int(x or 0) for x in sub[-3:]]
                    colour = ("rgb", tuple(rgb))
                s = replace(s, fg=colour) if head == 38 else replace(s, bg=colour)
            elif head == 4:
                s = replace(s, underline=sub[1] != "0")
            i += 1
            continue
        n = int(p or 0)
        if n == 0:
            s = Style()
        elif n == 1:
            s = replace(s, bold=True)
        elif n == 2:
            s = replace(s, dim=True)
        elif n == 3:
            s = replace(s, italic=True)
        elif n in (4, 21):
            s = replace(s, underline=True)
        elif n == 7:
            s = replace(s, reverse=True)
        elif n == 22:
            s = replace(s, bold=False, dim=False)
        elif n == 23:
            s = replace(s, italic=False)
        elif n == 24:
            s = replace(s, underline=False)
        elif n == 27:
            s = replace(s, reverse=False)
        elif 30 <= n <= 37:
            s = replace(s, fg=("i", n - 30))
        elif 90 <= n <= 97:
            s = replace(s, fg=("i", n - 90 + 8))
        elif 40 <= n <= 47:
            s = replace(s, bg=("i", n - 40))
        elif 100 <= n <= 107:
            s = replace(s, bg=("i", n - 100 + 8))
        elif n == 39:
            s = replace(s, fg=None)
        elif n == 49:
            s = replace(s, bg=None)
        elif n in (38, 48) and i + 1 < len(parts):
            kind = parts[i + 1]
            if kind == "5" and i + 2 < len(parts):
                colour = ("i", int(parts[i + 2] or 0))
                i += 2
            elif kind == "2" and i + 4 < len(parts):
                colour = ("rgb", tuple(int(x or 0) for x in parts[i + 2 : i + 5]))
                i += 4
            else:
                colour = None
                i += 1
            s = replace(s, fg=colour) if n == 38 else replace(s, bg=colour)
        i += 1
    return s


def char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def parse(text: str, width: int, height: int) -> list[list[Cell]]:
    """The screen `text` paints: one line of text per row, no cursor movement expected."""
    grid = [[Cell() for _ in range(width)] for _ in range(height)]
    text = OSC.sub("", text)
    text = OTHER_ESC.sub("", text)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    style = Style()
    for y, line in enumerate(lines[:height]):
        x = 0
        pos = 0
        while pos < len(line):
            m = CSI.match(line, pos)
            if m:
                if m.group(3) == "m" and not m.group(2):
                    style = apply_sgr(style, m.group(1))
                pos = m.end()
                continue
            ch = line[pos]
            pos += 1
            if ch == "\r" or ch == "\x1b" or (ord(ch) < 32 and ch != "\t"):
                continue
            if ch == "\t":
                x = min(width, (x // 8 + 1) * 8)
                continue
            w = char_width(ch)
            if w == 0:
                if x > 0:
                    grid[y][x - 1].ch += ch
                continue
            if x + w > width:
                break
            grid[y][x] = Cell(ch, style)
            if w == 2:
                grid[y][x + 1] = Cell("", style, wide_tail=True)
            x += w
    return grid


class Glyphs:
    """Fonts with per-glyph fallback."""

    def __init__(self, size: int):
        regular = [MONO]
        bold = [MONO_BOLD, MONO]
        others = sorted(
            f
            for f in glob.glob("/usr/share/fonts/**/*.[ot]tf", recursive=True)
            if f not in (MONO, MONO_BOLD)
        )
        # DejaVu Sans before anything else: it matches the mono's look.
        others.sort(key=lambda f: 0 if "DejaVuSans.ttf" in f else 1)
        self.regular = [ImageFont.truetype(f, size) for f in regular + others if os.path.exists(f)]
        self.bold = [ImageFont.truetype(f, size) for f in bold + others if os.path.exists(f)]
        self.mono = self.regular[0]
        ascent, descent = self.mono.getmetrics()
        self.ascent = ascent
        self.cell_w = round(self.mono.getlength("M"))
        self.cell_h = ascent + descent + 2
        self.pad_top = 1
        self._missing = {}
        self._cache = {}

    def _has(self, font, ch: str) -> bool:
        key = id(font)
        if key not in self._missing:
            probe = font.getmask("\U0010fffd")
            self._missing[key] = (probe.size, bytes(probe))
        mask = font.getmask(ch)
        return (mask.size, bytes(mask)) != self._missing[key]

    def font_for(self, ch: str, bold: bool):
        key = (ch, bold)
        if key not in self._cache:
            chain = self.bold if bold else self.regular
            self._cache[key] = next((f for f in chain if self._has(f, ch)), chain[0])
        return self._cache[key]


def resolve(colour, default) -> tuple[int, int, int]:
    if colour is None:
        return default
    kind, value = colour
    return palette256(value) if kind == "i" else value


def blend(a, b, t: float):
    return tuple(round(x * (1 - t) + y * t) for x, y in zip(a, b))


# Box drawing: which of (up, right, down, left) each character connects, and how heavy.
LIGHT, HEAVY, DOUBLE = 1, 2, 3
BOX = {}


def _box(chars: str, arms):
    for ch, a in zip(chars, arms):
        BOX[ch] = a


_box("─│┌┐└┘├┤┬┴┼", [
    (0, 1, 0, 1), (1, 0, 1, 0), (0, 1, 1, 0), (0, 0, 1, 1), (1, 1, 0, 0), (1, 0, 0, 1),
    (1, 1, 1, 0), (1, 0, 1, 1), (0, 1, 1, 1), (1, 1, 0, 1), (1, 1, 1, 1),
])
_box("━┃┏┓┗┛┣┫┳┻╋", [
    (0, 2, 0, 2), (2, 0, 2, 0), (0, 2, 2, 0), (0, 0, 2, 2), (2, 2, 0, 0), (2, 0, 0, 2),
    (2, 2, 2, 0), (2, 0, 2, 2), (0, 2, 2, 2), (2, 2, 0, 2), (2, 2, 2, 2),
])
_box("═║╔╗╚╝╠╣╦╩╬", [
    (0, 3, 0, 3), (3, 0, 3, 0), (0, 3, 3, 0), (0, 0, 3, 3), (3, 3, 0, 0), (3, 0, 0, 3),
    (3, 3, 3, 0), (3, 0, 3, 3), (0, 3, 3, 3), (3, 3, 0, 3), (3, 3, 3, 3),
])
_box("╴╵╶╷", [(0, 0, 0, 1), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0)])
ROUNDED = {"╭": (0, 1, 1, 0), "╮": (0, 0, 1, 1), "╰": (1, 1, 0, 0), "╯": (1, 0, 0, 1)}


def draw_special(draw: ImageDraw.ImageDraw, ch: str, x: int, y: int, w: int, h: int, fg) -> bool:
    """Draws box drawing, block elements, braille and a few symbols as shapes."""
    cx, cy = x + w // 2, y + h // 2
    lw = max(1, round(w / 8))
    if ch in BOX:
        up, right, down, left = BOX[ch]

        def arm(kind, box):
            if not kind:
                return
            t = lw * 2 if kind == HEAVY else lw
            x0, y0, x1, y1 = box
            if kind == DOUBLE:
                gap = lw + 1
                if x0 == x1:  # vertical
                    for dx in (-gap, gap):
                        draw.rectangle([x0 + dx - (lw - 1) // 2, y0 - gap, x0 + dx + lw // 2, y1 + gap], fill=fg)
                else:
                    for dy in (-gap, gap):
                        draw.rectangle([x0 - gap, y0 + dy - (lw - 1) // 2, x1 + gap, y0 + dy + lw // 2], fill=fg)
                return
            if x0 == x1:
                draw.rectangle([x0 - (t - 1) // 2, y0, x0 + t // 2, y1], fill=fg)
            else:
                draw.rectangle([x0, y0 - (t - 1) // 2, x1, y0 + t // 2], fill=fg)

        arm(up, (cx, y, cx, cy))
        arm(down, (cx, cy, cx, y + h - 1))
        arm(left, (x, cy, cx, cy))
        arm(right, (cx, cy, x + w - 1, cy))
        return True
    if ch in ROUNDED:
        up, right, down, left = ROUNDED[ch]
        r = min(w, h) // 2
        # the straight parts, then a quarter circle joining them
        half = (lw - 1) // 2
        if up:
            draw.rectangle([cx - half, y, cx + lw // 2, cy - r], fill=fg)
        if down:
            draw.rectangle([cx - half, cy + r, cx + lw // 2, y + h - 1], fill=fg)
        if left:
            draw.rectangle([x, cy - half, cx - r, cy + lw // 2], fill=fg)
        if right:
            draw.rectangle([cx + r, cy - half, x + w - 1, cy + lw // 2], fill=fg)
        ox = cx + (r if right else -r)
        oy = cy + (r if down else -r)
        start = {(1, 1): 180, (0, 1): 270, (1, 0): 90, (0, 0): 0}[(right, down)]
        draw.arc([ox - r, oy - r, ox + r, oy + r], start, start + 90, fill=fg, width=lw)
        return True
    code = ord(ch)
    if ch == "█":
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=fg)
        return True
    if 0x2581 <= code <= 0x2587:  # ▁▂▃▄▅▆▇ lower eighths
        eighths = code - 0x2580
        top = y + h - round(h * eighths / 8)
        draw.rectangle([x, top, x + w - 1, y + h - 1], fill=fg)
        return True
    if 0x2589 <= code <= 0x258F:  # ▉▊▋▌▍▎▏ left eighths
        eighths = 8 - (code - 0x2588)
        right_edge = x + max(1, round(w * eighths / 8)) - 1
        draw.rectangle([x, y, right_edge, y + h - 1], fill=fg)
        return True
    if ch == "▀":
        draw.rectangle([x, y, x + w - 1, y + h // 2 - 1], fill=fg)
        return True
    if ch == "▐":
        draw.rectangle([x + w // 2, y, x + w - 1, y + h - 1], fill=fg)
        return True
    if ch == "▔":
        draw.rectangle([x, y, x + w - 1, y + max(1, h // 8) - 1], fill=fg)
        return True
    if ch == "▕":
        draw.rectangle([x + w - max(1, w // 8), y, x + w - 1, y + h - 1], fill=fg)
        return True
    if 0x2800 <= code <= 0x28FF:  # braille
        bits = code - 0x2800
        dots = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
        rad = max(1, w // 6)
        for i, (dx, dy) in enumerate(dots):
            if bits & (1 << i):
                px = x + round(w * (1 + 2 * dx) / 4)
                py = y + round(h * (1 + 2 * dy) / 8)
                draw.ellipse([px - rad, py - rad, px + rad, py + rad], fill=fg)
        return True
    if ch == "⏸":  # pause: two bars
        bw = max(2, w // 4)
        top, bottom = y + h // 4, y + h - h // 4 - 1
        draw.rectangle([x + w // 2 - bw - 1, top, x + w // 2 - 2, bottom], fill=fg)
        draw.rectangle([x + w // 2 + 1, top, x + w // 2 + bw, bottom], fill=fg)
        return True
    return False


@dataclass
class Pane:
    left: int
    top: int
    width: int
    height: int
    path: str
    title: str | None


def parse_pane(spec: str) -> Pane:
    geometry, _, rest = spec.partition(":")
    path, _, title = rest.partition(":")
    left, top, width, height = (int(v) for v in geometry.split(","))
    return Pane(left, top, width, height, path, title or None)


def compose(cols: int, rows: int, panes: list[Pane]) -> list[list[Cell]]:
    screen = [[Cell() for _ in range(cols)] for _ in range(rows)]
    covered = [[False] * cols for _ in range(rows)]
    for pane in panes:
        with open(pane.path, encoding="utf-8", errors="replace") as f:
            grid = parse(f.read(), pane.width, pane.height)
        for y in range(pane.height):
            for x in range(pane.width):
                sy, sx = pane.top + y, pane.left + x
                if 0 <= sy < rows and 0 <= sx < cols:
                    screen[sy][sx] = grid[y][x]
                    covered[sy][sx] = True
    if len(panes) > 1:
        border = Style(fg=("rgb", BORDER))

        def gap(x, y):
            return 0 <= x < cols and 0 <= y < rows and not covered[y][x]

        arms_to_char = {v: k for k, v in BOX.items() if max(v) <= 1}
        arms_to_char[(1, 0, 0, 0)] = arms_to_char[(0, 0, 1, 0)] = "│"
        arms_to_char[(0, 1, 0, 0)] = arms_to_char[(0, 0, 0, 1)] = "─"
        for y in range(rows):
            for x in range(cols):
                if covered[y][x]:
                    continue
                arms = (int(gap(x, y - 1)), int(gap(x + 1, y)), int(gap(x, y + 1)), int(gap(x - 1, y)))
                if any(arms):
                    screen[y][x] = Cell(arms_to_char[arms], border)
        title_style = Style(fg=("rgb", TITLE_FG), bold=True)
        for pane in panes:
            y = pane.top - 1
            if not pane.title or y < 0:
                continue
            text = f" {pane.title} "[: max(0, pane.width - 2)]
            for i, ch in enumerate(text):
                x = pane.left + 1 + i
                if x < cols and not covered[y][x]:
                    screen[y][x] = Cell(ch, title_style)
    return screen


def render(screen: list[list[Cell]], title: str, font_size: int) -> Image.Image:
    glyphs = Glyphs(font_size)
    cw, ch_ = glyphs.cell_w, glyphs.cell_h
    rows, cols = len(screen), len(screen[0])
    pad = 12
    bar = 34
    width = cols * cw + 2 * pad + 2
    height = rows * ch_ + 2 * pad + bar + 2
    img = Image.new("RGB", (width, height), CHROME_EDGE)
    draw = ImageDraw.Draw(img)
    # window: a title bar with three lights and the title, then the terminal
    draw.rectangle([1, 1, width - 2, bar], fill=CHROME_BG)
    draw.rectangle([1, bar + 1, width - 2, height - 2], fill=DEFAULT_BG)
    for i, colour in enumerate(LIGHTS):
        cx, cy, r = 20 + i * 20, bar // 2 + 1, 6
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    title_font = ImageFont.truetype(SANS_BOLD if os.path.exists(SANS_BOLD) else MONO, 13)
    tw = draw.textlength(title, font=title_font)
    draw.text(((width - tw) / 2, bar // 2 + 1), title, font=title_font, fill=CHROME_TEXT, anchor="lm")

    ox, oy = 1 + pad, bar + 1 + pad
    for y, row in enumerate(screen):
        for x, cell in enumerate(row):
            if cell.wide_tail:
                continue
            s = cell.style
            fg = resolve(s.fg, DEFAULT_FG)
            bg = resolve(s.bg, DEFAULT_BG)
            if s.bold and s.fg is None:
                fg = ANSI16[15]
            if s.reverse:
                fg, bg = bg, fg
            if s.dim:
                fg = blend(fg, bg, 0.45)
            span = 2 if x + 1 < cols and row[x + 1].wide_tail else 1
            px, py = ox + x * cw, oy + y * ch_
            if bg != DEFAULT_BG:
                draw.rectangle([px, py, px + span * cw - 1, py + ch_ - 1], fill=bg)
            text = cell.ch
            if text and text != " ":
                if len(text) != 1 or not draw_special(draw, text, px, py, cw * span, ch_, fg):
                    font = glyphs.font_for(text[0], s.bold)
                    gx = px
                    if font is not glyphs.regular[0] and font is not glyphs.bold[0]:
                        # a fallback glyph: centre it in its cells rather than overflow
                        gx = px + (cw * span - font.getlength(text)) / 2
                    draw.text((gx, py + glyphs.pad_top), text, font=font, fill=fg, anchor="la")
            if s.underline:
                uy = py + glyphs.pad_top + glyphs.ascent + 1
                draw.line([px, uy, px + span * cw - 1, uy], fill=fg)
    return img


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", required=True, help="COLSxROWS of the window")
    ap.add_argument("--pane", action="append", required=True, help="LEFT,TOP,WIDTH,HEIGHT:FILE[:TITLE]")
    ap.add_argument("--title", default="", help="the window's title bar text")
    ap.add_argument("--font-size", type=int, default=15)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    screen = compose(cols, rows, [parse_pane(p) for p in args.pane])
    img = render(screen, args.title, args.font_size)
    # Few colours: a palette image keeps the file small; no dithering keeps text crisp.
    small = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(args.output, optimize=True)
    size_kb = os.path.getsize(args.output) // 1024
    print(f"{os.path.basename(args.output)}: {img.width}x{img.height} px, {size_kb} KB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
