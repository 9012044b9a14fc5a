"""The parser against real-world mail written by others (tests/fixtures/mail/corpus/)."""

from datetime import UTC, datetime

import pytest

from strongroom.mail.parse import Address, MailLimits, ParsedMessage, ParseFailure, parse_message
from tests.mail.samples import CORPUS, corpus_message

EMPTY = "mikel-mail/sample_output_multipart.eml"
ALL_MESSAGES = sorted(path.relative_to(CORPUS).as_posix() for path in CORPUS.glob("*/*.eml"))
READABLE_MESSAGES = [name for name in ALL_MESSAGES if name != EMPTY]
LONG_SUBJECT_SENTENCE = "Die heiße Zypernsonne quälte Max und Victoria ja böse auf dem Weg bis zur Küste"


def test_the_corpus_copy_is_complete():
    assert len(ALL_MESSAGES) == 153
    assert EMPTY in ALL_MESSAGES


@pytest.mark.parametrize("name", READABLE_MESSAGES)
def test_corpus_message_parses(name):
    raw = corpus_message(name)

    message = parse_message(raw, MailLimits())

    assert isinstance(message, ParsedMessage)


@pytest.mark.parametrize("name", READABLE_MESSAGES)
def test_corpus_message_headers_and_file_names_come_out_as_safe_single_lines(name):
    raw = corpus_message(name)

    message = parse_message(raw, MailLimits())

    names = [message.subject, *(a.name for a in (*message.to, *message.cc, *message.reply_to))]
    assert all("\r" not in text and "\n" not in text and "\x00" not in text for text in names)
    assert all(
        "/" not in a.filename and "\\" not in a.filename and "\n" not in a.filename and a.filename
        for a in message.attachments
    )


def test_the_empty_corpus_message_is_refused_as_empty():
    raw = corpus_message(EMPTY)

    with pytest.raises(ParseFailure, match="the message is empty"):
        parse_message(raw, MailLimits())


def test_non_ascii_attachment_filename_is_decoded():
    raw = corpus_message("mikel-mail/attachment_emails_attachment_nonascii_filename.eml")

    message = parse_message(raw, MailLimits())

    assert [a.filename for a in message.attachments] == ["ciële.txt"]
    assert message.attachments[0].content_type == "text/plain"
    assert message.attachments[0].content == b"Hi there.\r\n"


def test_rfc2231_japanese_attachment_filename_is_decoded():
    raw = corpus_message("mikel-mail/multi_charset_japanese_attachment.eml")

    message = parse_message(raw, MailLimits())

    assert [a.filename for a in message.attachments] == ["てすと.txt"]


def test_quoted_8bit_attachment_filename_is_decoded():
    raw = corpus_message("mikel-mail/attachment_emails_attachment_with_quoted_filename.eml")

    message = parse_message(raw, MailLimits())

    assert [a.filename for a in message.attachments] == ["Eelanalüüsi päring.jpg"]


def test_endless_enclosed_message_yields_body_error_and_still_a_subject():
    raw = corpus_message("flanker/enclosed-endless.eml")

    message = parse_message(raw, MailLimits())

    assert message.body_error == "far more than 500 MIME parts"
    assert message.subject == "Wow"
    assert message.sender == Address(name="Sasha Simple", address="example@example.net")
    assert message.text_body == ""
    assert message.attachments == ()


def test_rfc2047_utf8_base64_subject_and_display_name_decode():
    raw = corpus_message("mikel-mail/multi_charset_japanese_iso_2022.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "まみむめも"
    assert message.to == (Address(name="みける", address="raasdnil@gmail.com"),)


def test_rfc2047_iso_2022_jp_subject_folded_over_lines_decodes():
    raw = corpus_message("mikel-mail/rfc2822_example14.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "Re: TESTテストテスト"


def test_rfc2047_split_utf8_subject_joins_adjacent_encoded_words():
    raw = corpus_message("flanker/bilingual-simple.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "Simple text. How are you? Как ты поживаешь?"


def test_encoded_words_between_plain_words_keep_the_plain_words():
    raw = corpus_message("mikel-mail/plain_emails_raw_email_with_partially_quoted_subject.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == 'Re: Test: "漢字" mid "漢字" tail'


def test_encoded_display_name_containing_a_comma_stays_one_address():
    raw = corpus_message("flanker/encoded-header.eml")

    message = parse_message(raw, MailLimits())

    assert message.sender == Address(name="Foo, Bar", address="foo.bar@example.com")
    assert message.message_id == "<1234567890-1234-4567@example.com>"


def test_raw_latin1_display_name_is_decoded_as_windows_1252():
    raw = corpus_message("flanker/from-encoding.eml")

    message = parse_message(raw, MailLimits())

    assert message.sender == Address(name="Ingo Lütkebohle", address="ingo@blank.pages.de")


def test_very_long_encoded_subject_is_cut_at_998_characters():
    raw = corpus_message("flanker/long-header.eml")

    message = parse_message(raw, MailLimits())

    assert len(message.subject) == 998
    assert message.subject == (LONG_SUBJECT_SENTENCE * 20)[:998]


def test_unknown_charset_in_subject_is_reported_and_the_text_kept():
    raw = corpus_message("mikel-mail/error_emails_bad_encoded_subject.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "TEST"
    assert "unknown charset 'none'" in message.problems


def test_unquoted_from_falls_back_to_the_first_address_like_thing_and_says_so():
    raw = corpus_message("mikel-mail/plain_emails_mix_caps_content_type.eml")

    message = parse_message(raw, MailLimits())

    assert message.sender == Address(name="Big Bug", address="bb@bug.com")
    assert "From header is not well-formed" in message.problems


def test_unreadable_date_is_none_and_reported():
    raw = corpus_message("mikel-mail/plain_emails_raw_email_with_bad_date.eml")

    message = parse_message(raw, MailLimits())

    assert message.date is None
    assert "unreadable Date header" in message.problems


def test_date_in_year_3609_is_refused_as_out_of_range():
    raw = corpus_message("mikel-mail/plain_emails_raw_email_bad_time.eml")

    message = parse_message(raw, MailLimits())

    assert message.date is None
    assert "Date header out of range" in message.problems


def test_reply_headers_of_the_rfc2822_example_are_read_in_order():
    raw = corpus_message("mikel-mail/rfc2822_example07.eml")

    message = parse_message(raw, MailLimits())

    assert message.message_id == "<abcd.1234@local.machine.tld>"
    assert message.in_reply_to == ("<3456@example.net>",)
    assert message.references == ("<1234@local.machine.example>", "<3456@example.net>")
    assert message.date == datetime(1997, 11, 21, 17, 0, tzinfo=UTC)


def test_inline_image_in_related_part_and_forwarded_message_become_attachments():
    raw = corpus_message("mikel-mail/attachment_emails_attachment_message_rfc822_inline_image.eml")

    message = parse_message(raw, MailLimits())

    image, forwarded = message.attachments
    assert (image.filename, image.content_type, image.is_inline) == ("img.png", "image/png", True)
    assert image.content_id == "emedfeb92f-a786-4718-a446-98db8afb53fb@kronos"
    assert image.content.startswith(b"\x89PNG\r\n")
    assert (forwarded.filename, forwarded.content_type, forwarded.is_inline) == (
        "Another PDF.eml",
        "message/rfc822",
        False,
    )
    assert 'src="cid:emedfeb92f-a786-4718-a446-98db8afb53fb@kronos"' in message.html_body


def test_torture_message_keeps_every_leaf_as_an_attachment():
    raw = corpus_message("flanker/torture.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "Multi-media mail demonstration"
    assert [a.content_type for a in message.attachments] == [
        "message/rfc822",
        "message/rfc822",
        "audio/basic",
        "image/pbm",
        "message/rfc822",
        "message/rfc822",
        "message/rfc822",
        "message/rfc822",
        "image/gif",
        "message/rfc822",
        "message/rfc822",
    ]
    assert message.problems == ()


def test_office365_bounce_is_auto_submitted():
    raw = corpus_message("flanker/bounce_office365.eml")

    message = parse_message(raw, MailLimits())

    assert message.is_auto_submitted is True
    assert message.subject == "Undeliverable: test_bounce 8"


def test_message_from_a_person_is_not_auto_submitted():
    raw = corpus_message("mikel-mail/plain_emails_basic_email.eml")

    message = parse_message(raw, MailLimits())

    assert message.is_auto_submitted is False
    assert message.sender == Address(name="Mikel Lindsaar", address="test@lindsaar.net")
    assert message.subject == "Testing 123"


def test_from_with_two_bare_addresses_never_yields_an_address_without_local_part():
    raw = corpus_message("mikel-mail/plain_emails_raw_email_multiple_from.eml")

    message = parse_message(raw, MailLimits())

    assert message.sender == Address(name="", address="tim@powerupdev.com")
