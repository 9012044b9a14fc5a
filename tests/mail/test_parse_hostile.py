"""The parser against hostile input: hand-written samples (tests/fixtures/mail/hostile/) and
generated messages too big or too deep to keep as files. Each test is named after the attack."""

import re

import pytest

from strongroom.mail.parse import Address, MailLimits, ParseFailure, parse_message, safe_filename
from tests.mail.samples import hostile_message

CONTROL_OR_LINE_BREAK = re.compile(r"[\x00-\x1f\x7f]")


def message_with_header_line(value: bytes) -> bytes:
    return b"From: carla@customer.example\r\nSubject: " + value + b"\r\n\r\nbody\r\n"


def nested_message(depth: int, *, text_at_each_level: bool = True) -> bytes:
    """multipart/mixed inside multipart/mixed, `depth` times, around one innermost text part.

    With `text_at_each_level`, each level also holds a text part that says how deep it is.
    """
    text = b"--level%d\r\nContent-Type: text/plain\r\n\r\ntext at depth %d.\r\n" if text_at_each_level else b""
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=level%d\r\n\r\n" % k
        + (text % (k, k + 1) if text else b"")
        + b"--level%d\r\n" % k
        for k in range(depth)
    )
    closing = b"".join(b"\r\n--level%d--\r\n" % k for k in reversed(range(depth)))
    return (
        b"From: carla@customer.example\r\nSubject: Deep\r\nMIME-Version: 1.0\r\n"
        + opening
        + b"Content-Type: text/plain\r\n\r\ninnermost.\r\n"
        + closing
    )


def message_with_parts(count: int, *, content_type_lines: bool = True) -> bytes:
    """A multipart/mixed message with `count` small text parts numbered from 1."""
    header = b"Content-Type: text/plain\r\n" if content_type_lines else b""
    parts = b"".join(b"--b\r\n" + header + b"\r\npart %d.\r\n" % n for n in range(1, count + 1))
    return (
        b"From: carla@customer.example\r\nSubject: Many parts\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    )


# --- header injection and junk in headers ---------------------------------------------------


def test_header_injection_via_encoded_words_in_subject_decodes_without_line_breaks():
    raw = hostile_message("header-injection-encoded-subject.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "a Bcc: x@evil"
    assert "\r" not in message.subject
    assert "\n" not in message.subject


def test_header_injection_via_encoded_display_name_decodes_without_line_breaks():
    raw = hostile_message("header-injection-encoded-display-name.eml")

    message = parse_message(raw, MailLimits())

    assert message.sender == Address(name="Carla Bcc: x@evil.example", address="carla@customer.example")


def test_nul_and_control_characters_in_headers_never_survive():
    raw = hostile_message("nul-and-control-characters-in-headers.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "bell nul escape [2J backspace delete end"
    assert message.sender is not None
    assert message.sender.address == "eve@attacker.example"
    assert not CONTROL_OR_LINE_BREAK.search(message.sender.name)


def test_control_character_inside_an_address_drops_the_address_and_is_reported():
    raw = hostile_message("nul-and-control-characters-in-headers.eml")

    message = parse_message(raw, MailLimits())

    assert message.reply_to == ()
    assert "control characters in an address in Reply-To" in message.problems


def test_nul_in_attachment_filename_cannot_hide_the_real_extension():
    raw = hostile_message("nul-and-control-characters-in-headers.eml")

    message = parse_message(raw, MailLimits())

    assert [a.filename for a in message.attachments] == ["invoice.pdf .exe"]


def test_eight_bit_junk_headers_decode_as_windows_1252():
    raw = hostile_message("eight-bit-junk-headers.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "Café crème brûlée"
    assert message.sender == Address(name="Jürgen Müller", address="juergen@customer.example")
    assert message.problems == ()


def test_unknown_charset_falls_back_and_is_reported():
    raw = hostile_message("unknown-charset.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "Qapla'"
    assert message.text_body.strip() == "Grüße in a charset nobody knows."
    assert message.problems == ("unknown charset 'x-klingon'",)
    assert message.body_error == ""


def test_non_text_codec_as_charset_in_subject_is_reported_not_fatal():
    raw = hostile_message("non-text-codec-charset.eml")

    message = parse_message(raw, MailLimits())

    assert message.sender == Address(name="Mallory", address="mallory@attacker.example")
    assert "unknown charset 'base64'" in message.problems


@pytest.mark.parametrize("charset", [b"base64", b"rot13", b"undefined", b"punycode"])
def test_non_text_codec_as_charset_of_the_body_keeps_the_body(charset):
    raw = (
        b"From: mallory@attacker.example\r\nSubject: codec\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="' + charset + b'"\r\n\r\nplain words \xff\r\n'
    )

    message = parse_message(raw, MailLimits())

    assert message.body_error == ""
    assert "plain words" in message.text_body


# --- bodies and parts -----------------------------------------------------------------------


def test_broken_base64_body_is_kept_and_reported():
    raw = hostile_message("broken-base64-body.eml")

    message = parse_message(raw, MailLimits())

    assert message.text_body.startswith("Hello world")
    assert "defect: InvalidBase64CharactersDefect" in message.problems
    assert message.body_error == ""


def test_broken_base64_attachment_is_reported():
    raw = hostile_message("broken-base64-attachment.eml")

    message = parse_message(raw, MailLimits())

    assert [a.filename for a in message.attachments] == ["report.pdf"]
    assert "defect: InvalidBase64CharactersDefect" in message.problems


def test_message_without_from_date_or_message_id_still_parses():
    raw = hostile_message("missing-headers.eml")

    message = parse_message(raw, MailLimits())

    assert message.subject == "Who sent this?"
    assert message.sender is None
    assert message.date is None
    assert message.message_id == ""
    assert message.problems == ("no readable sender",)
    assert message.text_body.strip() == "No From, no Date, no Message-ID."


def test_bad_date_is_dropped_and_reported():
    raw = hostile_message("bad-date-unreadable.eml")

    message = parse_message(raw, MailLimits())

    assert message.date is None
    assert message.problems == ("unreadable Date header",)


def test_far_future_date_cannot_pin_a_message_to_the_top():
    raw = hostile_message("bad-date-far-future.eml")

    message = parse_message(raw, MailLimits())

    assert message.date is None
    assert message.problems == ("Date header out of range",)


@pytest.mark.parametrize(
    "value",
    [b"Mon, 1 Jan 2024 00:00:00 +9999", b"Mon, 1 Jan 2024 25:61:99 +0000", b"Mon, 1 Jan 99999999999999999999 00:00"],
)
def test_date_with_impossible_fields_is_dropped_and_reported(value):
    raw = b"From: carla@customer.example\r\nDate: " + value + b"\r\n\r\nbody\r\n"

    message = parse_message(raw, MailLimits())

    assert message.date is None
    assert message.problems == ("unreadable Date header",)


# --- limits ---------------------------------------------------------------------------------


def test_absurdly_long_header_line_is_cut_to_998_characters():
    raw = message_with_header_line(b"A" * 200_000)

    message = parse_message(raw, MailLimits())

    assert message.subject == "A" * 998
    assert message.text_body.strip() == "body"


def test_header_line_longer_than_the_header_limit_is_refused():
    raw = message_with_header_line(b"A" * 300_000)

    with pytest.raises(ParseFailure, match="the header block is larger than 262144 bytes"):
        parse_message(raw, MailLimits())


def test_too_many_headers_are_refused():
    raw = hostile_message("too-many-headers.eml")

    with pytest.raises(ParseFailure, match="more than 50 header lines"):
        parse_message(raw, MailLimits(max_headers=50))


def test_header_count_exactly_at_the_limit_is_accepted():
    raw = hostile_message("too-many-headers.eml")

    message = parse_message(raw, MailLimits(max_headers=63))

    assert message.subject == "Too many headers"


def test_header_block_over_max_header_bytes_is_refused():
    raw = hostile_message("oversized-header-block.eml")

    with pytest.raises(ParseFailure, match="the header block is larger than 2048 bytes"):
        parse_message(raw, MailLimits(max_header_bytes=2048))


def test_header_block_under_max_header_bytes_is_accepted():
    raw = hostile_message("oversized-header-block.eml")

    message = parse_message(raw, MailLimits(max_header_bytes=4096))

    assert message.subject == "A big header block"


def test_message_over_max_message_bytes_is_refused_before_parsing():
    raw = message_with_header_line(b"x") + b"y" * 2000

    with pytest.raises(ParseFailure, match="over the limit of 1000"):
        parse_message(raw, MailLimits(max_message_bytes=1000))


def test_whitespace_only_message_is_refused_as_empty():
    raw = b" \r\n\t\r\n"

    with pytest.raises(ParseFailure, match="the message is empty"):
        parse_message(raw, MailLimits())


def test_mime_nesting_beyond_max_depth_is_cut_and_reported():
    raw = nested_message(30)

    message = parse_message(raw, MailLimits())

    assert "text at depth 20." in message.text_body
    assert "text at depth 21." not in message.text_body
    assert "MIME nesting deeper than 20; the rest is in the raw message" in message.problems
    assert message.subject == "Deep"


def test_mime_nesting_that_would_break_the_stdlib_parser_keeps_the_headers():
    raw = nested_message(1500, text_at_each_level=False)

    message = parse_message(raw, MailLimits())

    assert message.body_error == "far more than 500 MIME parts"
    assert message.subject == "Deep"
    assert message.sender == Address(name="", address="carla@customer.example")


def test_more_parts_than_max_parts_are_cut_and_reported():
    raw = message_with_parts(12)

    message = parse_message(raw, MailLimits(max_parts=5))

    assert message.text_body == "part 1.\n\npart 2.\n\npart 3.\n\npart 4."
    assert "more than 5 MIME parts; the rest is in the raw message" in message.problems
    assert message.body_error == ""


def test_far_more_parts_than_max_parts_keeps_only_the_headers():
    raw = message_with_parts(30)

    message = parse_message(raw, MailLimits(max_parts=5))

    assert message.body_error == "far more than 5 MIME parts"
    assert message.text_body == ""
    assert message.subject == "Many parts"


def test_many_parts_without_content_type_lines_are_stopped_before_parsing():
    raw = message_with_parts(30, content_type_lines=False)

    message = parse_message(raw, MailLimits(max_parts=5))

    assert message.body_error == "far more than 5 MIME parts"


def test_references_flood_is_capped_to_the_most_recent_hundred():
    ids = b" ".join(b"<ref%d@customer.example>" % n for n in range(500))
    raw = b"From: carla@customer.example\r\nReferences: " + ids + b"\r\nIn-Reply-To: " + ids + b"\r\n\r\nbody\r\n"

    message = parse_message(raw, MailLimits())

    assert len(message.references) == 100
    assert message.references[-1] == "<ref499@customer.example>"
    assert message.references[0] == "<ref400@customer.example>"
    assert len(message.in_reply_to) == 100


# --- attachments ----------------------------------------------------------------------------


def test_attached_message_rfc822_is_one_attachment_named_after_its_subject():
    raw = hostile_message("attached-message-rfc822.eml")

    message = parse_message(raw, MailLimits())

    (attached,) = message.attachments
    assert attached.content_type == "message/rfc822"
    assert attached.filename == "the original.eml"
    assert attached.content.startswith(b"From: Original Sender <original@elsewhere.example>")
    assert b"inner attachment" in attached.content
    assert message.text_body == "See the attached message."


def test_path_traversal_in_attachment_filenames_is_flattened():
    raw = hostile_message("path-traversal-filename.eml")

    message = parse_message(raw, MailLimits())

    assert [a.filename for a in message.attachments] == [
        "etc_passwd",
        "windows_system32_evil.dll",
        "ssh_authorized_keys",
        "var_www_shell.php",
    ]


def test_shell_redirection_and_glob_characters_in_filename_are_replaced():
    raw = hostile_message("shell-characters-filename.eml")

    message = parse_message(raw, MailLimits())

    (attachment,) = message.attachments
    assert not set('|<>*?"/\\') & set(attachment.filename)
    assert attachment.filename.endswith(".pdf")


def test_command_substitution_and_chaining_characters_in_filename_are_replaced():
    raw = hostile_message("shell-characters-filename.eml")

    message = parse_message(raw, MailLimits())

    (attachment,) = message.attachments
    assert not set("$`;&") & set(attachment.filename)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "etc_passwd"),
        ("/etc/passwd", "etc_passwd"),
        ("C:\\Windows\\System32\\evil.dll", "C_Windows_System32_evil.dll"),
        ("report\r\nContent-Type: text/html.pdf", "report_Content-Type_ text_html.pdf"),
        ("...", "fallback.bin"),
        ("", "fallback.bin"),
        ("a" * 300 + ".pdf", "a" * 200),
    ],
)
def test_safe_filename_flattens_paths_and_falls_back_when_nothing_is_left(name, expected):
    assert safe_filename(name, "fallback.bin") == expected


# --- message shapes -------------------------------------------------------------------------


def test_html_only_message_gets_a_text_body_without_tags():
    raw = hostile_message("html-only.eml")

    message = parse_message(raw, MailLimits())

    assert message.text_body == "Hello Carla & team, Your order 1234 <shipped>."
    assert "alert" not in message.text_body
    assert "Title text" not in message.text_body
    assert "<script>" in message.html_body


def test_multipart_alternative_keeps_one_text_and_one_html():
    raw = hostile_message("multipart-alternative.eml")

    message = parse_message(raw, MailLimits())

    assert message.text_body == "First plain version."
    assert message.html_body == "<p>First HTML version.</p>"
    assert message.attachments == ()


def test_inline_cid_image_in_multipart_related_is_inline_with_bare_content_id():
    raw = hostile_message("inline-cid-image-related.eml")

    message = parse_message(raw, MailLimits())

    (image,) = message.attachments
    assert image.is_inline is True
    assert image.content_id == "logo@customer.example"
    assert image.filename == "logo.png"
    assert image.content == b"\x89PNG\r\n\x1a\n"
    assert 'src="cid:logo@customer.example"' in message.html_body


def test_auto_submitted_bounce_is_flagged():
    raw = hostile_message("auto-submitted-bounce.eml")

    message = parse_message(raw, MailLimits())

    assert message.is_auto_submitted is True
    assert message.text_body.startswith("Your message could not be delivered.")


@pytest.mark.parametrize("header", [b"Precedence: bulk", b"Precedence: list", b"Auto-Submitted: auto-generated"])
def test_bulk_and_generated_mail_is_flagged_as_auto_submitted(header):
    raw = b"From: news@shop.example\r\n" + header + b"\r\n\r\nbody\r\n"

    message = parse_message(raw, MailLimits())

    assert message.is_auto_submitted is True


@pytest.mark.parametrize("header", [b"Auto-Submitted: no", b"Auto-Submitted: No", b"Precedence: normal"])
def test_mail_marked_as_written_by_a_person_is_not_auto_submitted(header):
    raw = b"From: carla@customer.example\r\n" + header + b"\r\n\r\nbody\r\n"

    message = parse_message(raw, MailLimits())

    assert message.is_auto_submitted is False


def test_auto_submitted_no_with_a_parameter_is_not_auto_submitted():
    raw = hostile_message("auto-submitted-no-with-parameter.eml")

    message = parse_message(raw, MailLimits())

    assert message.is_auto_submitted is False


@pytest.mark.parametrize(
    "name",
    ["ambiguous-from-bare-address-before-angle-address.eml", "ambiguous-from-raw-at-sign-in-encoded-word.eml"],
)
def test_ambiguous_from_header_is_reported(name):
    raw = hostile_message(name)

    message = parse_message(raw, MailLimits())

    assert any("From" in problem for problem in message.problems)
