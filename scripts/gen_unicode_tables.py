#!/usr/bin/python3
"""Writes include/ember/text/unicode_tables.hpp: the Unicode character data that
text::BertTokenizer needs, taken from Python's own `unicodedata` (the data Hugging Face's
Python BertTokenizer consults), so Ember does not depend on ICU.

    /usr/bin/python3 scripts/gen_unicode_tables.py     # from the repository root

Tables (code point ranges [first, last], sorted, merged):
  kPunctuation      general category P*            (HF _is_punctuation, beside the ASCII ranges)
  kOther            general category C* (Cc Cf Cs Co Cn)  (HF _is_control, minus \\t \\n \\r)
  kSpaceSeparator   Zs                             (HF _is_whitespace, beside ' ' \\t \\n \\r)
  kNonspacingMark   Mn                             (dropped by accent stripping)
  kCombiningClass   {first, last, ccc} for ccc != 0 (canonical ordering inside NFD)
  kDecomposition    one level of canonical decomposition (applied recursively gives NFD before
                    canonical ordering), Hangul syllables excepted (arithmetic, Unicode §3.12)
  kLower            {first, last, delta, stride}: str.lower() for every code point whose lower
                    case is one code point (U+0130 is the one exception; written out in code)
  kCaseIgnorable, kCasedNotIgnorable: the two properties str.lower() consults to choose the
                    final sigma (U+03A3 -> U+03C2), probed from str.lower() itself.
The script checks every table against unicodedata / str.lower() before writing.
"""
import os
import sys
import unicodedata as ud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "include", "ember", "text", "unicode_tables.hpp")
N = 0x110000


def ranges(pred):
    out, start = [], None
    for cp in range(N):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, N - 1))
    return out


def valued_ranges(value):
    """[(first, last, v)] over code points with value(cp) != 0."""
    out = []
    for cp in range(N):
        v = value(cp)
        if v == 0:
            continue
        if out and out[-1][1] == cp - 1 and out[-1][2] == v:
            out[-1] = (out[-1][0], cp, v)
        else:
            out.append((cp, cp, v))
    return out


def cat(cp):
    return ud.category(chr(cp))


def fmt_rows(rows, per_line):
    items = ["{" + ",".join("0x%X" % x if x >= 0 else "%d" % x for x in r) + "}" for r in rows]
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("    " + ",".join(items[i:i + per_line]) + ",")
    return "\n".join(lines)


def main():
    punct = ranges(lambda c: cat(c).startswith("P"))
    other = ranges(lambda c: cat(c).startswith("C"))
    zs = ranges(lambda c: cat(c) == "Zs")
    mn = ranges(lambda c: cat(c) == "Mn")
    ccc = valued_ranges(lambda c: ud.combining(chr(c)))

    # One level of canonical decomposition (applied recursively by the reader); Hangul
    # syllables are algorithmic.
    decomp = []
    for c in range(N):
        d = ud.decomposition(chr(c))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert 1 <= len(parts) <= 2, hex(c)
        decomp.append((c, parts[0], parts[1] if len(parts) == 2 else 0))

    def nfd(c):
        for e in decomp:
            if e[0] == c:
                return nfd(e[1]) + (nfd(e[2]) if e[2] else [])
        return [c]
    # The reader's recursion gives Python's NFD (before canonical ordering) for every entry.
    for e in decomp:
        want = [ord(x) for x in ud.normalize("NFD", chr(e[0]))]
        got = nfd(e[0])
        assert sorted(got) == sorted(want), hex(e[0])

    # Lower case: one code point → one code point, as runs with a common delta and stride 1 or 2.
    lower = []
    for c in range(N):
        lo = chr(c).lower()
        if lo == chr(c):
            continue
        if len(lo) != 1:
            assert c == 0x130 and lo == "i\u0307", hex(c)  # handled in code
            continue
        delta = ord(lo) - c
        if lower:
            f, l, dl, st = lower[-1]
            step = c - l
            if dl == delta and step in (1, 2) and (st == step or f == l):
                lower[-1] = (f, c, dl, step)
                continue
        lower.append((c, c, delta, 1))

    def final(s):
        return s.lower()[-1] == "\u03c2"

    # str.lower() picks the final sigma when a cased letter precedes (skipping case-ignorables)
    # and none follows. Probe both properties through str.lower() itself.
    ignorable = ranges(lambda c: final("A" + chr(c) + "\u03a3") and not final(" " + chr(c) + "\u03a3"))
    cased = ranges(lambda c: final(" " + chr(c) + "\u03a3"))

    # Self-checks of the run encoding.
    def lower_of(c):
        for f, l, d, st in lower:
            if f <= c <= l and (c - f) % st == 0:
                return c + d
        return c
    for c in range(N):
        if c != 0x130:
            assert chr(lower_of(c)) == chr(c).lower() or c == 0x3A3 and chr(c).lower() == "\u03c3", hex(c)

    version = ud.unidata_version
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("#pragma once\n")
        f.write("/// Unicode character data for text::BertTokenizer, generated by scripts/gen_unicode_tables.py\n")
        f.write("/// from Python %s's unicodedata (Unicode %s). Do not edit; rerun the script.\n" %
                (sys.version.split()[0], version))
        f.write("/// Range tables are sorted [first, last] pairs; see the script for what each holds.\n")
        f.write("#include <cstdint>\n\nnamespace ember::text::unicode_tables {\n\n")
        f.write('inline constexpr char kUnicodeVersion[] = "%s";\n\n' % version)
        for name, rows, comment in [
            ("kPunctuation", punct, "general category P*"),
            ("kOther", other, "general category C*: Cc Cf Cs Co Cn"),
            ("kSpaceSeparator", zs, "general category Zs"),
            ("kNonspacingMark", mn, "general category Mn"),
            ("kCaseIgnorable", ignorable, "Case_Ignorable, as str.lower() sees it"),
            ("kCasedNotIgnorable", cased, "Cased and not Case_Ignorable, as str.lower() sees it"),
        ]:
            f.write("/// %s (%d ranges)\n" % (comment, len(rows)))
            f.write("inline constexpr uint32_t %s[][2] = {\n%s\n};\n\n" % (name, fmt_rows(rows, 8)))
        f.write("/// {first, last, canonical combining class} for every class != 0 (%d ranges)\n" % len(ccc))
        f.write("inline constexpr uint32_t kCombiningClass[][3] = {\n%s\n};\n\n" % fmt_rows(ccc, 6))
        f.write("/// {first, last, delta, stride}: lower(c) = c + delta for c in [first, last] with\n")
        f.write("/// (c - first) %% stride == 0 (%d runs)\n" % len(lower))
        f.write("inline constexpr int32_t kLower[][4] = {\n%s\n};\n\n" % fmt_rows(lower, 5))
        f.write("/// {code point, first, second or 0}: one level of canonical decomposition, to apply\n")
        f.write("/// recursively (%d code points; Hangul syllables are decomposed arithmetically)\n" % len(decomp))
        f.write("inline constexpr uint32_t kDecomposition[][3] = {\n%s\n};\n\n" % fmt_rows(decomp, 6))
        f.write("}  // namespace ember::text::unicode_tables\n")
    print("wrote %s (%d bytes): Unicode %s, %d punctuation, %d other, %d Mn, %d ccc, %d lower, %d decomp"
          % (OUT, os.path.getsize(OUT), version, len(punct), len(other), len(mn), len(ccc), len(lower),
             len(decomp)))


if __name__ == "__main__":
    main()
