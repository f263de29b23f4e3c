"""The CS tokenizer: task tokens and per-token language tags; the one character classifier behind them."""

import pytest

from espnet_cs.corpora.text_norm import normalize_transcript
from espnet_cs.text import infer_category, units
from espnet_cs.tokenizer import CSTokenizer, Language, char_language

ZH, EN, OTHER = Language.ZH, Language.EN, Language.OTHER


def test_task_tokens_match_whisper_special_tokens():
    zh_en, zh = CSTokenizer("zh_en"), CSTokenizer("zh")
    special = zh_en.whisper.special_tokens
    expected = ["<|startoftranscript|>", "<|zh|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    assert zh_en.sot_sequence == tuple(special[t] for t in expected)
    assert zh.sot_sequence == tuple(special[t] for t in expected if t != "<|en|>")
    assert zh_en.lid_positions == {"zh": 1, "en": 2}
    assert zh.lid_positions == {"zh": 1}


def test_unknown_or_renamed_task_tokens_and_english_only_vocab_are_errors():
    with pytest.raises(ValueError, match="unknown task_tokens 'both'"):
        CSTokenizer("both")
    for old, new in (("single", "zh"), ("cs", "zh_en")):
        with pytest.raises(ValueError, match=f"^CSTokenizer: task tokens '{old}' were renamed to '{new}'$"):
            CSTokenizer(old)
    with pytest.raises(ValueError, match="English-only"):
        CSTokenizer.for_vocab(51864)
    assert CSTokenizer.for_vocab(51866).num_languages == 100


def test_char_language():
    assert [char_language(c) for c in "中a，1 Ｂ。"] == [ZH, EN, OTHER, OTHER, OTHER, EN, OTHER]


TRICKY = {
    "㐀": ZH,
    "𠀀": ZH,
    "𰀀": ZH,  # CJK extensions A, B, G
    "豈": ZH,
    "﨎": ZH,
    "丽": ZH,  # compatibility ideographs (豈 is NFKC 豈, 﨎 is its own), supplement
    "這": ZH,  # traditional: scoring and corpora simplify it
    "。": OTHER,
    "，": OTHER,
    "、": OTHER,
    "〇": OTHER,
    "々": OTHER,
    "⺀": OTHER,  # CJK, not ideographs
    "Ａ": EN,
    "é": EN,
    "ß": EN,
    "z": EN,  # full-width, diacritic, plain Latin
    "1": OTHER,
    "１": OTHER,
    "٣": OTHER,  # digits
    "я": OTHER,
    "か": OTHER,
    "한": OTHER,
    "ω": OTHER,  # letters of other scripts
}


@pytest.mark.parametrize("char, language", TRICKY.items(), ids=[f"U+{ord(c):04X}" for c in TRICKY])
def test_tokenizer_scoring_and_corpora_agree_on_a_character(char, language):
    tok = CSTokenizer()
    assert char_language(char) is language
    assert set(tok.language_tags(tok.encode(char))) == {language}
    # scoring: Mandarin makes a reference zh (a digit adds no language), English makes Mandarin cs
    assert (infer_category(units(f"{char} 1")) == "zh") == (language is ZH)
    assert (infer_category(units(f"中{char}")) == "cs") == (language is EN)
    # corpora: only Mandarin is written next to Mandarin without a space
    assert (len(normalize_transcript(f"中{char}")) == 2) == (language is ZH)


def test_tags_follow_the_script_of_each_token():
    tok = CSTokenizer()
    text = "这个 project 的 deadline 是下个星期"
    ids = tok.encode(text)
    tags = tok.language_tags(ids)
    assert tok.decode(ids) == text
    pieces = [tok.whisper.encoding.decode_single_token_bytes(i).decode("utf-8", "replace") for i in ids]
    for piece, tag in zip(pieces, tags):
        letters = [c for c in piece if not c.isspace()]
        assert tag == (EN if letters[0].isascii() else ZH), (piece, tag)
    assert tags.count(EN) == 2


def test_characters_split_across_tokens_keep_their_language():
    tok = CSTokenizer()
    ids = tok.encode("龘")  # a rare character: several byte-level tokens
    tags = tok.language_tags(ids)
    assert len(ids) > 1 and tags == [ZH] * len(ids)


def test_special_tokens_and_punctuation_are_other():
    tok = CSTokenizer()
    ids = [*tok.sot_sequence, *tok.encode(" ok, 好。"), tok.eot]
    tags = tok.language_tags(ids)
    assert tags[: len(tok.sot_sequence)] == [OTHER] * len(tok.sot_sequence) and tags[-1] == OTHER
    assert set(tags) == {EN, ZH, OTHER}


def test_invalid_utf8_hypothesis_is_tagged_per_token():
    tok = CSTokenizer()
    ids = tok.encode("龘")[:1] + tok.encode(" yes")  # cut in the middle of a character
    assert tok.language_tags(ids)[-1] == EN


def test_decode_drops_special_tokens():
    tok = CSTokenizer()
    ids = [*tok.sot_sequence, *tok.encode("你好 world"), tok.eot]
    assert tok.decode(ids) == "你好 world"
