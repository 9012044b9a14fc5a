"""Received HTML made safe to show: sanitized with nh3, then shown in a sandboxed frame.

Sanitizing keeps the formatting people expect in mail (tables, fonts, colours) and drops
scripts, event handlers, forms, frames, and any URL scheme but http(s), mailto, and images
that are inline (cid:) or embedded (data:image). Remote images stay in the markup but the
frame's Content-Security-Policy blocks them until an agent asks for them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass

import nh3

TAGS = (set(nh3.ALLOWED_TAGS) | {"font", "tfoot"}) - {"map", "area"}
ATTRIBUTES: dict[str, set[str]] = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
ATTRIBUTES.setdefault("*", set()).update({"style", "dir", "lang", "title", "align"})
ATTRIBUTES["font"] = {"color", "face", "size"}
ATTRIBUTES["img"] = {"src", "alt", "width", "height", "align", "title", "border"}
for _table_tag in ("table", "td", "th", "tr"):
    ATTRIBUTES.setdefault(_table_tag, set()).update(
        {"width", "height", "valign", "bgcolor", "border", "cellpadding", "cellspacing"}
    )
STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "white-space",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-top",
    "border-bottom",
    "border-left",
    "border-right",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "width",
    "max-width",
    "min-width",
    "height",
    "max-height",
    "display",
    "list-style-type",
    "direction",
}
LINK_SCHEMES = ("http://", "https://", "mailto:")
RASTER_DATA_URL_RE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]*$")


@dataclass(frozen=True)
class SafeHtml:
    html: str
    has_remote_images: bool


def sanitize_html(markup: str) -> SafeHtml:
    """Sanitize received HTML. The result may still name remote and cid: images."""
    remote: list[str] = []

    def keep(tag: str, attribute: str, value: str) -> str | None:
        lowered = value.strip().lower()
        if tag == "img" and attribute == "src":
            if lowered.startswith(("http://", "https://", "//")):
                remote.append(value)
                return value
            if lowered.startswith("cid:") or (lowered.startswith("data:image/") and "svg" not in lowered[:20]):
                return value
            return None
        if attribute == "href":
            return value if lowered.startswith(LINK_SCHEMES) else None
        return value

    cleaned = nh3.clean(
        markup,
        tags=TAGS,
        clean_content_tags={"script", "style", "head", "title", "noscript", "template", "iframe", "object"},
        attributes=ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        filter_style_properties=STYLE_PROPERTIES,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        link_rel="noopener noreferrer nofollow",
    )
    return SafeHtml(html=cleaned, has_remote_images=bool(remote))


def embed_inline_images(safe_html: str, images: Mapping[str, str]) -> str:
    """Replace cid: image sources by the data: URLs in `images` (content id -> data URL).

    Runs the sanitizer again, so the output is as safe as `sanitize_html` made it.
    """

    def resolve(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src" and value.lower().startswith("cid:"):
            replacement = images.get(value[4:].strip("<>"), "")
            return replacement if RASTER_DATA_URL_RE.match(replacement) else None
        return value

    return nh3.clean(
        safe_html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=resolve,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        filter_style_properties=STYLE_PROPERTIES,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        link_rel="noopener noreferrer nofollow",
    )
