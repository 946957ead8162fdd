import pytest

from app.core.text import digits, like_pattern, search_form


@pytest.mark.parametrize("spelling", ["ﾔﾏﾀﾞ", "ヤマダ", "やまだ", "ヤ マ ダ", "ﾔﾏ ﾀﾞ"])
def test_kana_spellings_share_one_search_form(spelling: str) -> None:
    assert search_form(spelling) == "やまだ"


def test_long_vowel_mark_and_small_kana_survive() -> None:
    assert search_form("ヴァーチャル") == "ゔぁーちゃる"


def test_latin_width_and_case_are_folded() -> None:
    assert search_form("ＴＡＲＯ@Example.JP") == "taro@example.jp"


def test_kanji_is_kept_without_spaces() -> None:
    assert search_form("山田　太郎") == "山田太郎"


def test_digits_fold_width_and_drop_punctuation() -> None:
    assert digits("０９０-1234-5678") == "09012345678"
    assert digits("+81 90 1234 5678") == "819012345678"


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_every_katakana_becomes_its_hiragana_and_nothing_else_changes() -> None:
    katakana = "".join(chr(code) for code in range(0x30A1, 0x30F7))
    assert search_form(katakana) == "".join(chr(ord(char) - 0x60) for char in katakana)
    around = "".join(chr(code) for code in (0x30A0, 0x30F7, 0x30FB, 0x30FC, 0x3041, 0x3096))
    assert search_form(around) == around
