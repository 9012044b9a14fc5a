"""Received HTML made safe to show: what sanitize_html drops, keeps and flags."""

import pytest

from strongroom.defense.html import embed_inline_images, sanitize_html

LINK_ATTRIBUTES = 'target="_blank" rel="noopener noreferrer nofollow"'
PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgo="


def test_script_elements_are_removed_with_their_content():
    safe = sanitize_html('<p>Hi<script>alert("x")</script></p><SCRIPT src="https://evil.example/x.js"></SCRIPT>')

    assert safe.html == "<p>Hi</p>"


def test_event_handlers_are_removed():
    safe = sanitize_html('<p onclick="steal()" onmouseover="steal()">t</p><img src="cid:a" onerror="steal()">')

    assert safe.html == '<p>t</p><img src="cid:a">'


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "/relative/path",
        "file:///etc/passwd",
    ],
)
def test_links_with_dangerous_or_relative_targets_lose_their_href(href):
    safe = sanitize_html(f'<a href="{href}">click</a>')

    assert "href" not in safe.html
    assert "click" in safe.html


def test_forms_and_their_controls_are_removed():
    safe = sanitize_html(
        '<form action="https://evil.example/login" method="post"><input name="password">'
        "<textarea>t</textarea><select><option>o</option></select><button>Log in</button></form>"
    )

    assert "<form" not in safe.html
    assert "<input" not in safe.html
    assert "<button" not in safe.html
    assert "evil.example" not in safe.html


@pytest.mark.parametrize(
    "markup",
    [
        '<iframe src="https://evil.example/">fallback</iframe>',
        '<object data="https://evil.example/x.swf">fallback</object>',
        '<embed src="https://evil.example/x.swf">',
        '<frameset><frame src="https://evil.example/"></frameset>',
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
        '<link rel="stylesheet" href="https://evil.example/s.css">',
        '<base href="https://evil.example/">',
        "<svg><script>alert(1)</script></svg>",
        '<template><img src="https://evil.example/t.gif"></template>',
        '<noscript><img src="https://evil.example/t.gif"></noscript>',
    ],
)
def test_frames_plugins_and_document_level_elements_are_removed(markup):
    safe = sanitize_html(markup)

    assert "evil.example" not in safe.html
    assert "<" not in safe.html


def test_style_elements_are_removed_with_their_content():
    safe = sanitize_html("<style>body { background: url(https://evil.example/t.gif) }</style><p>after</p>")

    assert safe.html == "<p>after</p>"


def test_basic_formatting_is_kept():
    markup = (
        "<p><b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><br></p><ul><li>l</li></ul><ol><li>o</li></ol>"
        "<blockquote>q</blockquote><h1>h</h1><pre>p</pre><hr>"
        '<table width="100%" cellpadding="2"><tbody><tr><td bgcolor="#ffffff" valign="top">c</td></tr></tbody></table>'
        '<font color="red" face="Arial" size="2">f</font>'
    )

    safe = sanitize_html(markup)

    assert safe.html == markup
    assert safe.has_remote_images is False


def test_safe_inline_styles_are_kept_and_the_rest_dropped():
    safe = sanitize_html(
        '<p style="color: red; font-weight: bold; background-image: url(https://evil.example/t.gif); '
        'position: fixed; behavior: url(x.htc)">s</p>'
    )

    assert safe.html == '<p style="color:red;font-weight:bold">s</p>'


@pytest.mark.parametrize(
    "src", ["https://tracker.example/p.gif", "http://tracker.example/p.gif", "//tracker.example/p.gif"]
)
def test_remote_images_are_kept_and_flagged(src):
    safe = sanitize_html(f'<p>Hi</p><img src="{src}" width="1" height="1">')

    assert safe.has_remote_images is True
    assert f'src="{src}"' in safe.html


@pytest.mark.parametrize("src", ["cid:logo@customer.example", PNG_DATA_URL, "data:image/gif;base64,R0lGOD=="])
def test_inline_and_embedded_images_are_kept_and_not_flagged(src):
    safe = sanitize_html(f'<img src="{src}" alt="logo">')

    assert safe.html == f'<img src="{src}" alt="logo">'
    assert safe.has_remote_images is False


@pytest.mark.parametrize(
    "src",
    [
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "DATA:IMAGE/SVG+XML,<svg onload=alert(1)>",
        "data:text/html;base64,PHNjcmlwdD4=",
        "javascript:alert(1)",
        "file:///etc/passwd",
    ],
)
def test_svg_and_non_image_sources_are_dropped(src):
    safe = sanitize_html(f'<img src="{src}" alt="x">')

    assert safe.html == '<img alt="x">'


def test_links_open_in_a_new_tab_without_opener_or_referrer():
    safe = sanitize_html(
        '<a href="https://example.com/a" target="_self" rel="opener">x</a><a href="mailto:carla@customer.example">m</a>'
    )

    assert safe.html == (
        f'<a href="https://example.com/a" {LINK_ATTRIBUTES}>x</a>'
        f'<a href="mailto:carla@customer.example" {LINK_ATTRIBUTES}>m</a>'
    )


def test_embed_inline_images_replaces_cid_sources():
    safe = sanitize_html('<p><img src="cid:logo@customer.example" alt="logo"><img src="cid:missing"></p>')

    html = embed_inline_images(safe.html, {"logo@customer.example": PNG_DATA_URL})

    assert html == f'<p><img src="{PNG_DATA_URL}" alt="logo"><img></p>'


def test_embed_inline_images_accepts_cid_sources_with_angle_brackets():
    html = embed_inline_images('<img src="cid:<logo@customer.example>">', {"logo@customer.example": PNG_DATA_URL})

    assert html == f'<img src="{PNG_DATA_URL}">'


def test_embed_inline_images_does_not_re_enable_anything_dangerous():
    safe = sanitize_html(
        '<a href="javascript:alert(1)" onclick="x()">a</a><script>alert(2)</script>'
        '<img src="cid:logo@customer.example" onerror="alert(3)"><form><input></form>'
    )

    html = embed_inline_images(safe.html, {"logo@customer.example": PNG_DATA_URL})

    assert html == f'<a {LINK_ATTRIBUTES}>a</a><img src="{PNG_DATA_URL}">'


def test_embed_inline_images_refuses_a_data_url_that_is_not_plain_base64():
    html = embed_inline_images('<img src="cid:a">', {"a": 'data:image/png;base64,AA" onerror="alert(1)'})

    assert html == "<img>"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="])
def test_embed_inline_images_refuses_a_replacement_that_sanitize_html_would_refuse(url):
    html = embed_inline_images('<img src="cid:a">', {"a": url})

    assert html == "<img>"
