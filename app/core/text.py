"""Search forms of text, so that width, case and kana spelling do not decide a match.

`ﾔﾏﾀﾞ`, `ヤマダ` and `やまだ` all become `やまだ`; `ＴＡＲＯ@Example.JP` becomes `taro@example.jp`.
"""

import re
import unicodedata

_KATAKANA_START, _KATAKANA_END = 0x30A1, 0x30F6  # ァ .. ヶ
_KATAKANA_TO_HIRAGANA = 0x60
_SPACES = re.compile(r"\s+")
_NOT_DIGITS = re.compile(r"\D+")


# Each katakana's code point to its hiragana's, for str.translate (one pass in C).
_HIRAGANA = {
    code: code - _KATAKANA_TO_HIRAGANA for code in range(_KATAKANA_START, _KATAKANA_END + 1)
}


def search_form(text: str) -> str:
    """NFKC (full/half width), case-folded, katakana as hiragana, without white space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub("", folded.translate(_HIRAGANA))


def digits(text: str) -> str:
    """Only the digits of `text` (after width folding): how phone numbers are searched."""
    return _NOT_DIGITS.sub("", unicodedata.normalize("NFKC", text))


def like_pattern(fragment: str) -> str:
    """A LIKE pattern matching `fragment` anywhere, with LIKE's own characters escaped by '\\'."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
