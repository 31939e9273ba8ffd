from __future__ import annotations

import unicodedata

from rag.text.segment import Format, identifiers, render, segments, tokens, word_spans


def texts(text: str, fmt: Format = "text", lang: str | None = None) -> list[str]:
    return [text[s.start : s.end] for s in segments(text, fmt, lang)]


def kinds(text: str, fmt: Format = "text", lang: str | None = None) -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in segments(text, fmt, lang)]


def contents(text: str, fmt: Format = "text", lang: str | None = None) -> list[str]:
    return [s.content for s in segments(text, fmt, lang)]


def test_spans_index_the_raw_text_trimmed_and_never_cross_a_blank_line() -> None:
    text = "\ufeffTitle\n\nOne sentence here.  Another one?\n\n  Last line.\n"
    found = segments(text)
    assert [text[s.start : s.end] for s in found] == [
        "Title",
        "One sentence here.",
        "Another one?",
        "Last line.",
    ]
    assert [s.kind for s in found] == ["heading", "statement", "question", "statement"]


def test_hard_wrapped_english_paragraph_keeps_its_sentences_whole() -> None:
    text = (
        "Harbour Notes\n\n"
        "The northern breakwater of the harbour was rebuilt in 2011 with granite\n"
        "blocks brought by barge from a quarry forty kilometres up the coast, and it\n"
        "now shelters about ninety fishing boats in winter. A second sentence\n"
        "follows here.\n"
    )
    got = texts(text, lang="en")
    assert got[0] == "Harbour Notes"
    assert got[1].startswith("The northern breakwater") and got[1].endswith("in winter.")
    assert got[2] == "A second sentence\nfollows here."
    assert contents(text)[2] == "A second sentence follows here."


def test_a_paragraph_written_on_one_long_line_ends_at_its_line_break() -> None:
    first = "The committee met every week during the long winter to discuss " * 3 + "the plan:"
    text = f"{first}\nSecond paragraph opens here. It ends here.\n"
    assert texts(text) == [first, "Second paragraph opens here.", "It ends here."]


def test_short_lines_stay_apart() -> None:
    text = "Opening hours: 9-17\nBeds: 45\nPhone: 555 0100\n"
    assert texts(text) == ["Opening hours: 9-17", "Beds: 45", "Phone: 555 0100"]
    assert {k for k, _ in kinds(text)} == {"statement"}


def test_text_wrapped_narrow_is_joined_where_a_line_continues() -> None:
    text = "The dam was finished\nin 1974 after nine\nyears of work,\nIts lake is deep.\nBoats\n"
    assert contents(text) == [
        "The dam was finished in 1974 after nine years of work, Its lake is deep.",
        "Boats",
    ]


def test_markdown_table_row_is_its_raw_line_and_its_content_carries_the_header() -> None:
    text = (
        "## Ferry fares\n\n"
        "| Route | Adult (NOK) | Child (NOK) |\n"
        "|---|---:|---:|\n"
        "| Bergen–Stavanger | 640 | 320 |\n"
        "| Oslo–Kiel | 1 200 | **600** |\n\n"
        "Fares include one bag.\n"
    )
    found = segments(text, "markdown")
    assert [s.kind for s in found] == [
        "heading",
        "table_header",
        "table_row",
        "table_row",
        "statement",
    ]
    rows = [s for s in found if s.kind == "table_row"]
    assert text[rows[0].start : rows[0].end] == "| Bergen–Stavanger | 640 | 320 |"
    assert rows[1].content == "Route: Oslo–Kiel | Adult (NOK): 1 200 | Child (NOK): 600"
    assert not any("---" in text[s.start : s.end] for s in found)


def test_a_table_without_header_gives_its_cells() -> None:
    text = "<table><tr><td>Basic</td><td>12</td></tr></table>"
    (row,) = segments(text, "html")
    assert (row.kind, row.content) == ("table_row", "Basic | 12")


def test_html_table_row_comes_with_its_header_and_entities_are_decoded() -> None:
    text = (
        "<html><head><title>Caf&eacute; prices</title></head><body>"
        "<table><tr><th>Item</th><th>Price &euro;</th></tr>"
        "<tr><td>Cr&egrave;me br&ucirc;l&eacute;e</td><td>6.50</td></tr></table>"
        "<p>Prices include <b>service</b> &amp; tax.<script>var x = '<p>';</script></p>"
        "</body></html>"
    )
    found = segments(text, "html")
    assert [(s.kind, s.content) for s in found] == [
        ("heading", "Café prices"),
        ("table_header", "Item | Price €"),
        ("table_row", "Item: Crème brûlée | Price €: 6.50"),
        ("statement", "Prices include service & tax."),
    ]


def test_html_blocks_and_br_are_boundaries_inline_tags_are_not() -> None:
    text = "<div>First block without a stop</div><div>Second <i>block</i>.<br>Third</div>"
    assert contents(text, "html") == ["First block without a stop", "Second block.", "Third"]
    assert contents("<p>caf<i>é</i> au lait.</p>", "html") == ["café au lait."]


def test_headings_lists_and_kinds_come_from_structure() -> None:
    text = (
        "# Lakeside Clinic\n\n"
        "Overview\n\n"
        "The clinic has 45 beds.\n\n"
        "- It opened in 1992.\n"
        "- Is parking free?\n"
        "1. Visiting hours are 10 to 18.\n"
    )
    assert kinds(text, "markdown") == [
        ("heading", "Lakeside Clinic"),
        ("heading", "Overview"),
        ("statement", "The clinic has 45 beds."),
        ("list_item", "It opened in 1992."),
        ("question", "Is parking free?"),
        ("list_item", "Visiting hours are 10 to 18."),
    ]


def test_a_line_between_paragraphs_of_prose_is_a_heading() -> None:
    before = "The fund was set up in 1990 by a group of teachers. " * 4 + "It grew fast."
    after = "It shrank after 2008, when its two largest donors left. " * 3 + "It closed in 2015."
    text = f"{before}\nGrowth and Decline: the Later Years\n{after}\n"
    got = kinds(text)
    assert ("heading", "Growth and Decline: the Later Years") in got
    assert [k for k, _ in got].count("heading") == 1


def test_markdown_inline_markup_is_dropped_from_contents() -> None:
    text = "> The **X-900** pump is made by [Acme](http://acme.example) &amp; `Co`.\n"
    (seg,) = segments(text, "markdown")
    assert seg.content == "The X-900 pump is made by Acme & Co."
    assert text[seg.start : seg.end].startswith("The **X-900**")


def test_an_underlined_title_of_a_text_file_is_a_heading_and_rules_are_nothing() -> None:
    text = "Harbour Notes\n=============\n\nBoats leave at dawn.\n\n* * *\n\nThe end.\n"
    assert kinds(text) == [
        ("heading", "Harbour Notes"),
        ("statement", "Boats leave at dawn."),
        ("statement", "The end."),
    ]


def test_plain_text_is_not_read_as_markdown_where_it_would_lose_text() -> None:
    text = "Results were good.\n---\n[1]: Smith, Annual report, 2020.\n<div>literal</div>\n"
    assert contents(text) == [
        "Results were good.",
        "[1]: Smith, Annual report, 2020.",
        "<div>literal</div>",
    ]


def test_a_short_chinese_statement_is_a_statement() -> None:
    assert kinds("华山医院\n\n医院有六百张床。\n") == [
        ("heading", "华山医院"),
        ("statement", "医院有六百张床。"),
    ]


def test_footnote_markers_are_text_of_their_sentence() -> None:
    text = (
        "The mill was built as a cottage.[1] It opened[2] in 1992 as a museum.¹ "
        "Entry is free.[citation needed]\n"
    )
    assert kinds(text, lang="en") == [
        ("statement", "The mill was built as a cottage.[1]"),
        ("statement", "It opened[2] in 1992 as a museum.¹"),
        ("statement", "Entry is free.[citation needed]"),
    ]
    assert kinds("The tower is 52 metres tall.[3]\n\nMore text.\n")[0] == (
        "statement",
        "The tower is 52 metres tall.[3]",
    )


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    text = "Dr. Smith met J. R. R. Tolkien in 1950, e.g. at Oxford. See Sec. 2.1 for more."
    assert texts(text, lang="en") == [
        "Dr. Smith met J. R. R. Tolkien in 1950, e.g. at Oxford.",
        "See Sec. 2.1 for more.",
    ]
    assert texts("dari OpenAI Inc. hingga gergasi cip Nvidia Corp. Era itu.") == [
        "dari OpenAI Inc. hingga gergasi cip Nvidia Corp.",
        "Era itu.",
    ]
    assert texts("It moved to the USA. 2023 was its best year.", lang="en") == [
        "It moved to the USA.",
        "2023 was its best year.",
    ]


def test_german_ordinals_and_abbreviations() -> None:
    assert texts("Am 3. Mai 2020 eröffnete z. B. das Museum. Es hat 40 Räume.", lang="de") == [
        "Am 3. Mai 2020 eröffnete z. B. das Museum.",
        "Es hat 40 Räume.",
    ]


def test_a_word_ending_in_a_letter_icu_abbreviates_still_ends_a_sentence() -> None:
    # CLDR lists "r." and "b." for German, "f." and "l." for Portuguese; ICU matched them
    # against the end of any word
    assert texts("Er kam im selben Jahr. Sie blieb hier.", lang="de") == [
        "Er kam im selben Jahr.",
        "Sie blieb hier.",
    ]
    assert texts("Ele mora no Brasil. Ela mora em Portugal.", lang="pt") == [
        "Ele mora no Brasil.",
        "Ela mora em Portugal.",
    ]
    assert texts("Mr. Smith arrived. Dr. Jones left.", lang="en") == [
        "Mr. Smith arrived.",
        "Dr. Jones left.",
    ]


def test_hindi_danda() -> None:
    text = "अस्पताल में चार सौ बिस्तर हैं। इसकी स्थापना 1975 में हुई थी। क्या यह सरकारी है?"
    got = kinds(text, lang="hi")
    assert [k for k, _ in got] == ["statement", "statement", "question"]
    assert got[0][1] == "अस्पताल में चार सौ बिस्तर हैं।"


def test_arabic_question_mark_and_no_space_after_a_stop() -> None:
    assert kinds("كم عدد الأسرة؟ يضم المستشفى 300 سرير.وافتتح عام 1980.", lang="ar") == [
        ("question", "كم عدد الأسرة؟"),
        ("statement", "يضم المستشفى 300 سرير."),
        ("statement", "وافتتح عام 1980."),
    ]


def test_chinese_sentences_need_no_space_after_the_mark() -> None:
    assert texts("DeepSeek很便宜。它来自杭州！真的吗？（是的）") == [
        "DeepSeek很便宜。",
        "它来自杭州！",
        "真的吗？",
        "（是的）",
    ]


def test_greek_semicolon_is_a_question_mark() -> None:
    assert kinds("Πόσα κρεβάτια έχει το νοσοκομείο; Έχει διακόσια κρεβάτια.", lang="el") == [
        ("question", "Πόσα κρεβάτια έχει το νοσοκομείο;"),
        ("statement", "Έχει διακόσια κρεβάτια."),
    ]


def test_russian_japanese_korean_and_turkish() -> None:
    assert texts("Больница открылась в 1975 г. Она большая. В ней 300 коек.", lang="ru")[-1] == (
        "В ней 300 коек."
    )
    assert texts("病院は1975年に開院した。ベッドは三百床ある！", lang="ja") == [
        "病院は1975年に開院した。",
        "ベッドは三百床ある！",
    ]
    assert texts("병원은 1975년에 문을 열었다. 병상은 300개이다.", lang="ko") == [
        "병원은 1975년에 문을 열었다.",
        "병상은 300개이다.",
    ]
    assert texts("Hastane 1975'te açıldı. 300 yatağı var.", lang="tr") == [
        "Hastane 1975'te açıldı.",
        "300 yatağı var.",
    ]


def test_burmese_ethiopic_and_armenian_stops() -> None:
    assert len(texts("ဆေးရုံသည် ကြီးသည်။ ကုတင် ၃၀၀ ရှိသည်။")) == 2
    assert len(texts("ሆስፒታሉ ትልቅ ነው። ሦስት መቶ አልጋዎች አሉት።")) == 2
    assert len(texts("Հիվանդանոցը մեծ է։ Այն ունի երեք հարյուր մահճակալ։")) == 2
    assert len(texts("Հիվանդանոցը մեծ է: Այն ունի երեք հարյուր մահճակալ:")) == 2


def test_thai_long_sentence_is_cut_at_clause_spaces() -> None:
    clause = "โรงพยาบาลแห่งนี้เปิดให้บริการตั้งแต่ปีพุทธศักราชสองพันห้าร้อยสิบแปด"
    text = " ".join([clause] * 6)
    units = texts(text, lang="th")
    assert len(units) >= 2
    assert all(len(u) <= 150 for u in units)
    assert "".join(u.replace(" ", "") for u in units) == text.replace(" ", "")
    short = "โรงพยาบาลมีเตียงสามร้อยเตียง เปิดทุกวัน"
    assert texts(short, lang="th") == [short]


def test_thai_lines_are_statements_not_headings() -> None:
    text = "ข้อมูลโรงพยาบาล\n\nโรงพยาบาลมีเตียงสามร้อยเตียง เปิดให้บริการทุกวัน\n\nโรงพยาบาลตั้งอยู่ใกล้แม่น้ำ\n"
    assert [k for k, _ in kinds(text, lang="th")] == ["heading", "statement", "statement"]


def test_bom_never_reaches_a_segment() -> None:
    text = "\ufeff# Title\n\nBody text.\n"
    assert kinds(text, "markdown") == [("heading", "Title"), ("statement", "Body text.")]
    assert segments("\ufeffPlain first line.\n")[0].start == 1


def test_astral_characters_keep_offsets() -> None:
    assert texts("Emoji 😀 here. 𠀀 is rare. Then 𝐁old.", lang="en") == [
        "Emoji 😀 here.",
        "𠀀 is rare.",
        "Then 𝐁old.",
    ]


def test_contents_are_nfc_without_invisible_characters() -> None:
    text = unicodedata.normalize("NFD", "Thư viện có bảy trăm nghìn cuốn sách.") + "\u200b"
    assert contents(text) == ["Thư viện có bảy trăm nghìn cuốn sách."]


def test_render_maps_raw_spans_to_the_readable_text() -> None:
    text = "<h1>Caf&eacute;</h1><p>It bakes <b>bread</b>. It opens at 7.</p><script>x</script>"
    shown = render(text, "html")
    assert shown.text == "Café\n\nIt bakes bread. It opens at 7."
    second = segments(text, "html")[2]
    start, end = shown.locate(second.start, second.end)
    assert shown.text[start:end] == "It opens at 7."
    assert shown.locate(len(text), len(text)) == (len(shown.text), len(shown.text))


def test_words_of_thai_japanese_chinese_by_dictionary() -> None:
    thai = "โรงพยาบาลมีเตียงสามร้อยเตียง"
    words = [thai[s:e] for s, e in word_spans(thai, "th")]
    assert {"พยาบาล", "เตียง", "สาม", "ร้อย"} <= set(words)
    assert "".join(words) == thai
    assert "病院" in tokens("病院は大きい", "ja")
    assert {"北京", "大学", "京大"} <= set(tokens("北京大学的学生", "zh"))
    assert tokens("中") == ["中"]


def test_korean_words_also_give_their_bigrams() -> None:
    assert "병원" in tokens("병원은 크다")
    assert set(tokens("병원")) <= set(tokens("병원은 크다"))


def test_arabic_article_is_stripped_so_forms_match() -> None:
    assert tokens("الصين") == tokens("والصين") == tokens("صين")
    assert tokens("بالمدينة") == ["مدينه"]
    assert tokens("المَدِينَة") == tokens("المدينة")


def test_tokens_numbers_and_identifiers() -> None:
    got = tokens("It costs 600,000 won, or 1.5 m, and １５００ yen, ٣٠٠ dinars.")
    assert {"600000", "1.5", "1500", "300"} <= set(got)
    for variant in ("The X900 pump", "The X-900 pump", "The X 900 pump", "The ｘ９００ pump"):
        assert "x900" in tokens(variant)
    assert "in1992" not in tokens("It opened in 1992.")
    assert "600000" in tokens("600\u00a0000 people")
    assert tokens("USD 600,000 and 85-90% H800 V3") == [
        "usd",
        "600000",
        "and",
        "85",
        "90",
        "h800",
        "v3",
    ]


def test_identifiers_are_codes_written_as_one_word_or_hyphenated() -> None:
    assert identifiers("Is the X-900 like the H800, GPT-4o or R2 in 1992?") == [
        "x900",
        "h800",
        "r2",
    ]
    assert identifiers("The X 900 opened in 1992") == []
    assert identifiers("On the 3rd down, a 2-point try in the 1970s, 2nd century") == []


def test_tokens_fold_and_exact_forms() -> None:
    assert tokens("Giám đốc") == ["giam", "doc"]
    assert tokens("Giám đốc", forms="both") == ["giam", "giám", "doc", "đốc"]
    assert tokens("Giám doc", forms="query") == ["giám", "doc"]
    assert tokens("Giám doc", forms="query", known={"giam", "doc"}) == ["giam", "doc"]
    assert tokens("STRASSE") == tokens("Straße")
    assert tokens("İstanbul") == tokens("ISTANBUL")


def test_nfd_and_zero_width_tokens_equal_clean_ones() -> None:
    clean = "Bệnh viện có 1.200 giường"
    messy = unicodedata.normalize("NFD", clean).replace(" ", " \u200b")
    for forms in ("folded", "both", "query"):
        assert tokens(messy, forms=forms) == tokens(clean, forms=forms)  # type: ignore[arg-type]
    assert tokens("co\u00adoperation") == ["cooperation"]


def test_a_question_mark_inside_a_url_or_a_name_does_not_end_the_sentence() -> None:
    text = "See https://example.org/p?id=7&x=1 for the list. Yahoo!Mail closed. Why? Because."
    assert texts(text) == [
        "See https://example.org/p?id=7&x=1 for the list.",
        "Yahoo!Mail closed.",
        "Why?",
        "Because.",
    ]
    # full-width marks are followed directly by the next sentence
    assert texts("你好吗？我很好。", lang="zh") == ["你好吗？", "我很好。"]
