"""Outbound MIME: compose() read back with the standard library's modern parser."""

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from strongroom.mail.compose import OutgoingAttachment, OutgoingMessage, compose, one_line, text_to_html
from strongroom.mail.parse import Address, MailLimits, parse_message

REPLY = OutgoingMessage(
    sender=Address("Alex Agent (Support A)", "support@a.example"),
    to=(Address("Carla Ünicode", "carla@customer.example"),),
    cc=(Address("", "boss@customer.example"), Address("Bea", "bea@customer.example")),
    reply_to=Address("Support A", "support+abcdefghijklmnopqrstuvwxyz@a.example"),
    subject="Re: Order 1234 — where is it?",
    text="Hello Carla,\n\nyour order ships today: https://shop.example/track?o=1234&x=1\n\nAlex",
    message_id="<sr.abcdefghijklmnopqrstuvwxyz.abcdefghijklmnop@a.example>",
    date=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    in_reply_to="<order-question@customer.example>",
    references=("<first@customer.example>", "<order-question@customer.example>"),
)
ATTACHMENTS = (
    OutgoingAttachment("invoice 1234.pdf", "application/pdf", b"%PDF-1.4 invoice"),
    OutgoingAttachment("Übersicht.csv", "text/csv", b"a,b\r\n1,2\r\n"),
)


def read_back(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_addresses_are_written_and_read_back():
    raw = compose(REPLY)

    message = read_back(raw)

    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Alex Agent (Support A)", "support@a.example")
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [
        ("Carla Ünicode", "carla@customer.example")
    ]
    assert [(a.display_name, a.addr_spec) for a in message["Cc"].addresses] == [
        ("", "boss@customer.example"),
        ("Bea", "bea@customer.example"),
    ]
    assert message["Reply-To"].addresses[0].addr_spec == "support+abcdefghijklmnopqrstuvwxyz@a.example"
    assert REPLY.recipients == ["carla@customer.example", "boss@customer.example", "bea@customer.example"]


def test_threading_headers_subject_and_date_are_written():
    raw = compose(REPLY)

    message = read_back(raw)

    assert message["Subject"] == "Re: Order 1234 — where is it?"
    assert message["Message-ID"] == "<sr.abcdefghijklmnopqrstuvwxyz.abcdefghijklmnop@a.example>"
    assert message["In-Reply-To"] == "<order-question@customer.example>"
    assert message["References"] == "<first@customer.example> <order-question@customer.example>"
    assert parsedate_to_datetime(message["Date"]) == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert message["Auto-Submitted"] == "no"
    assert message.get_all("MIME-Version") == ["1.0"]


def test_message_without_cc_or_threading_headers_leaves_them_out():
    raw = compose(replace(REPLY, cc=(), reply_to=None, in_reply_to="", references=()))

    message = read_back(raw)

    assert message["Cc"] is None
    assert message["Reply-To"] is None
    assert message["In-Reply-To"] is None
    assert message["References"] is None


def test_text_and_html_alternatives_carry_the_text():
    raw = compose(REPLY)

    message = read_back(raw)

    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == REPLY.text
    assert html.get_content_charset() == "utf-8"
    assert '<a href="https://shop.example/track?o=1234&amp;x=1">' in html.get_content()


def test_attachments_keep_filename_type_and_bytes():
    raw = compose(replace(REPLY, attachments=ATTACHMENTS))

    message = read_back(raw)

    assert message.get_content_type() == "multipart/mixed"
    attachments = [
        (a.get_filename(), a.get_content_type(), a.get_payload(decode=True)) for a in message.iter_attachments()
    ]
    assert attachments == [
        ("invoice 1234.pdf", "application/pdf", b"%PDF-1.4 invoice"),
        ("Übersicht.csv", "text/csv", b"a,b\r\n1,2\r\n"),
    ]


def test_attachment_without_type_or_name_gets_safe_defaults():
    raw = compose(replace(REPLY, attachments=(OutgoingAttachment("", "", b"\x00\x01"),)))

    message = read_back(raw)

    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "attachment.bin"
    assert attachment.get_content_type() == "application/octet-stream"


def test_every_line_ends_in_crlf_and_headers_are_7bit():
    raw = compose(replace(REPLY, attachments=ATTACHMENTS))

    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert b"\r\r" not in raw
    assert all(line.isascii() for line in header_lines(raw))


def test_composed_message_parses_with_strongroom_s_own_parser():
    raw = compose(replace(REPLY, attachments=ATTACHMENTS))

    parsed = parse_message(raw, MailLimits())

    assert parsed.subject == REPLY.subject
    assert parsed.sender == Address("Alex Agent (Support A)", "support@a.example")
    assert parsed.message_id == REPLY.message_id
    assert parsed.references == REPLY.references
    assert [a.filename for a in parsed.attachments] == ["invoice 1234.pdf", "Übersicht.csv"]
    assert parsed.is_auto_submitted is False


def test_header_injection_in_subject_rejected():
    raw = compose(replace(REPLY, subject="Re: Order\r\nBcc: evil@attacker.example\r\n\r\nforged body"))

    message = read_back(raw)

    assert message["Bcc"] is None
    assert message["Subject"] == "Re: Order  Bcc: evil@attacker.example    forged body"
    assert not any(line.lower().startswith(b"bcc:") for line in header_lines(raw))
    assert REPLY.text.split("\n")[0] in message.get_body(preferencelist=("plain",)).get_content()


def test_header_injection_in_display_name_rejected():
    evil = Address("Carla\r\nBcc: evil@attacker.example", "carla@customer.example")

    raw = compose(replace(REPLY, sender=evil, to=(evil,)))

    message = read_back(raw)
    assert message["Bcc"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["carla@customer.example"]
    assert message["From"].addresses[0].display_name == "Carla  Bcc: evil@attacker.example"


def test_header_injection_in_threading_headers_rejected():
    raw = compose(
        replace(
            REPLY,
            message_id="<a@a.example>\r\nBcc: evil@attacker.example",
            in_reply_to="<b@customer.example>\nBcc: evil@attacker.example",
            references=("<c@customer.example>\rBcc: evil@attacker.example",),
        )
    )

    message = read_back(raw)

    assert message["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc:") for line in header_lines(raw))


def test_header_injection_in_attachment_filename_rejected():
    attachment = OutgoingAttachment('x.pdf"\r\nContent-Type: text/html\r\n\r\n<script>', "application/pdf", b"%PDF")

    raw = compose(replace(REPLY, attachments=(attachment,)))

    message = read_back(raw)
    (read,) = message.iter_attachments()
    assert read.get_content_type() == "application/pdf"
    assert read.get_payload(decode=True) == b"%PDF"
    assert "\n" not in read.get_filename()


@pytest.mark.parametrize("address", ["carla@customer.example\r\nBcc: evil@attacker.example", "carla\x00@x.example"])
def test_recipient_address_with_control_characters_is_refused(address):
    with pytest.raises(ValueError, match="not a valid address"):
        compose(replace(REPLY, to=(Address("Carla", address),)))


def test_recipient_without_at_sign_is_refused():
    with pytest.raises(ValueError, match="not a valid address"):
        compose(replace(REPLY, to=(Address("Carla", "carla.customer.example"),)))


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_subject_with_a_unicode_line_separator_is_flattened_not_refused(separator):
    raw = compose(replace(REPLY, subject=f"Re: a{separator}Bcc: evil@attacker.example"))

    message = read_back(raw)

    assert message["Bcc"] is None
    assert message["Subject"].startswith("Re: a")


def test_one_line_replaces_every_ascii_control_character():
    assert one_line(" a\r\nb\tc\x00d\x1be\x7f ") == "a  b c d e"


def test_text_to_html_escapes_script():
    markup = text_to_html('Hi <script>alert("x")</script> & <img src=x onerror=alert(1)>')

    assert "<script" not in markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in markup
    assert "<img" not in markup
    assert "&amp;" in markup


def test_text_to_html_keeps_paragraphs_and_line_breaks():
    markup = text_to_html("first line\nsecond line\n\n\n\nnext paragraph")

    assert "<p>first line<br>\nsecond line</p>\n<p>next paragraph</p>" in markup


def test_text_to_html_links_only_http_urls_and_keeps_quotes_out_of_the_href():
    markup = text_to_html('see https://shop.example/a"onmouseover="alert(1) and javascript:alert(2)')

    assert '<a href="https://shop.example/a&quot;onmouseover=&quot;alert(1)">' in markup
    assert 'href="javascript' not in markup
    assert " onmouseover=" not in markup
