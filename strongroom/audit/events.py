"""The catalogue of audit events: every code the log may hold, and the detail keys each may carry.

Codes are dotted, lower case, stable and never reused (STYLE.md). `record()` refuses a code
that is not listed here and a detail key the event does not declare, so personal data and
content cannot slip into the log through a new call: a reviewer sees every field on this page.
Detail values are ids, enums, counts and flags, never message content, secrets or passwords.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"


class ActorKind(StrEnum):
    PERSON = "person"  # a signed-in person, in the browser or through an API token (token_id set)
    SYSTEM = "system"  # the installation itself: set-up, command line, migrations
    WORKER = "worker"  # the background worker (actor_id is the worker id)
    ANONYMOUS = "anonymous"  # nobody signed in (failed sign-in, denied anonymous request)


@dataclass(frozen=True)
class Event:
    code: str
    summary: str
    details: frozenset[str] = frozenset()
    is_read: bool = False  # a read of content (AUD-1): counted by the mass-viewing rule


def _events(*events: Event) -> dict[str, Event]:
    return {event.code: event for event in events}


# Detail keys that templates would read as a dict's methods (row.details.items).
RESERVED_DETAIL_KEYS = frozenset({"items", "keys", "values", "get"})


def _e(code: str, summary: str, *details: str, read: bool = False) -> Event:
    assert not RESERVED_DETAIL_KEYS & set(details), f"{code}: a detail key may not be one of {RESERVED_DETAIL_KEYS}"
    return Event(code, summary, frozenset(details), read)


EVENTS: dict[str, Event] = _events(
    # --- sign-in and accounts -------------------------------------------------------------------
    _e("auth.signin.succeeded", "Signed in", "method", "new_device"),
    _e("auth.signin.failed", "Sign-in failed", "account", "reason"),
    _e("auth.signout", "Signed out"),
    _e("auth.password.changed", "Changed their password"),
    _e("auth.throttle.notified", "Told a person their sign-in was throttled", "attempts"),
    _e("auth.reauthenticated", "Confirmed who they are for a sensitive operation", "failures", "method"),
    _e("auth.mfa.reset", "Reset a person's second factors", "person", "factors", "sessions"),
    # --- second factors (identity/mfa.py): "type" is totp, webauthn, recovery_code or passkey ---
    _e("auth.mfa.enrolled", "Added a second factor", "type", "passwordless", "first"),
    _e("auth.mfa.removed", "Removed a second factor", "type", "remaining"),
    _e("auth.mfa.used", "Passed the second-factor check", "type", "reauthenticated", "passwordless"),
    _e("auth.mfa.failed", "Failed the second-factor check", "type", "reauthenticated", "reason"),
    _e("auth.mfa.recovery_codes.generated", "Generated new recovery codes", "count"),
    _e("auth.mfa.recovery_code.used", "Used a recovery code", "remaining", "reauthenticated"),
    _e("auth.mfa.viewed", "Opened their second factors", "count"),
    _e("security.policy.changed", "Changed a security policy", "setting", "applies_to", "global_roles", "inbox_roles"),
    _e("user.created", "Created a person", "person", "global_role"),
    _e("user.role.changed", "Changed a person's global role", "person", "from", "to"),
    _e("user.deactivated", "Offboarded a person", "person", "sessions", "tokens", "memberships", "conversations"),
    _e("session.ended", "Ended a browser session", "session", "reason"),
    _e("sessions.viewed", "Opened their sessions", "count"),
    _e("people.viewed", "Opened the list of people", "count"),
    _e("access.report.viewed", "Opened the access report", "rows", "stale", "days"),
    _e("access.report.exported", "Exported who has access to what", "rows"),
    _e("token.created", "Created an API token", "token", "expires_at", "perms", "inboxes"),
    _e("token.revoked", "Revoked an API token", "token"),
    _e("tokens.viewed", "Opened their API tokens", "count"),
    # --- inboxes and members --------------------------------------------------------------------
    _e("inbox.created", "Created an inbox"),
    _e("inbox.updated", "Changed an inbox", "fields"),
    _e("inbox.mail.configured", "Changed an inbox's mail connection", "fields"),
    _e("inbox.connection.tested", "Tested an inbox's mail connection", "imap", "smtp"),
    _e("inbox.settings.viewed", "Opened inbox settings", "count"),
    # a member is a person or a team: "person" or "team" names it
    _e("member.added", "Added a member to an inbox", "person", "team", "role", "assigned_only"),
    _e("member.role.changed", "Changed a member's role", "person", "team", "from", "to", "assigned_only"),
    _e("member.removed", "Removed a member from an inbox", "person", "team", "role", "reason"),
    # --- roles, teams, break-glass grants and access reviews ------------------------------------
    _e("role.created", "Created a custom role", "perms"),
    _e("role.updated", "Changed a custom role", "added", "removed"),
    _e("role.deleted", "Deleted a custom role"),
    _e("roles.viewed", "Opened the roles", "count"),
    _e("team.created", "Created a team"),
    _e("team.renamed", "Renamed a team"),
    _e("team.deleted", "Deleted a team", "memberships"),
    _e("team.member.added", "Added a person to a team", "person"),
    _e("team.member.removed", "Removed a person from a team", "person", "reason"),
    _e("teams.viewed", "Opened the teams", "count"),
    _e("access.grant.requested", "Asked for break-glass access", "role", "hours"),
    _e("access.grant.approved", "Approved break-glass access", "person", "role", "hours"),
    _e("access.grant.denied", "Denied break-glass access", "person", "role", "hours"),
    _e("access.grant.revoked", "Revoked break-glass access", "person", "role"),
    _e("access.grant.withdrawn", "Withdrew their break-glass access", "person", "role"),
    _e("access.grant.expired", "Break-glass access expired", "person", "role"),
    _e("access.grants.viewed", "Opened break-glass access", "count"),
    _e("access.grant.notified", "Mailed the owners about a break-glass request", "recipients"),
    _e("access.review.notified", "Mailed the people who decide in an access review", "recipients"),
    _e("access.review.started", "Started an access review", "memberships", "outcome"),
    _e("access.review.decided", "Decided on a membership in an access review", "review", "decision", "role"),
    _e("access.review.closed", "Closed an access review", "kept", "revoked", "by_default"),
    _e("access.review.viewed", "Opened access reviews", "count"),
    _e("members.viewed", "Listed an inbox's members", "count", "channel"),
    # --- conversations: reads -------------------------------------------------------------------
    _e("inbox.listed", "Listed their inboxes", "count", "channel"),
    _e("conversation.listed", "Listed conversations", "view", "status", "tag", "page", "count", "channel", read=True),
    _e("conversation.searched", "Searched conversations", "page", "count", "channel", read=True),
    _e("conversation.viewed", "Opened a conversation", "channel", read=True),
    _e("conversation.messages.listed", "Read a conversation's messages", "channel", "count", read=True),
    # message-level reads name the conversation as target (its access history shows them)
    _e("message.html.viewed", "Opened a message's HTML", "message", "remote_images", read=True),
    _e("message.source.viewed", "Opened a message's source", "message", read=True),
    _e("attachment.downloaded", "Downloaded an attachment", "attachment", "channel", read=True),
    _e("contact.viewed", "Opened a contact", read=True),
    _e("conversation.exported", "Exported a conversation", "format", "count", "channel", read=True),
    _e("delivery.viewed", "Checked a reply's delivery", "message"),
    # --- conversations: changes -----------------------------------------------------------------
    _e("conversation.assigned", "Assigned a conversation", "from", "to"),
    _e("conversation.status.changed", "Changed a conversation's status", "from", "to"),
    _e("conversation.tagged", "Changed a conversation's tags", "added", "removed"),
    _e("note.added", "Added a note", "message"),
    _e("reply.queued", "Sent a reply", "message", "recipients", "attachments"),
    _e("reply.retried", "Sent a failed reply again", "message"),
    _e("conversation.deleted", "Deleted a conversation", "messages", "attachments"),
    # --- mail -----------------------------------------------------------------------------------
    _e("mail.ingested", "Received a message", "message", "source", "is_new_conversation"),
    _e("mail.unreadable", "Kept a message that could not be filed", "receipt", "attempts"),
    _e("mail.sent", "Delivered a reply", "message", "attempts"),
    _e("mail.delivery.failed", "A reply could not be delivered", "message", "attempts", "permanent"),
    _e("mail.fetch.failed", "Fetching mail failed", "error"),
    # --- access ---------------------------------------------------------------------------------
    _e("access.denied", "Was refused access", "status", "view", "method", "perm"),
    # --- the audit log itself -------------------------------------------------------------------
    _e("audit.viewed", "Opened the audit log", "count", "filters"),
    _e("audit.exported", "Exported the audit log", "format", "count", "filters"),
    _e("audit.checkpoint.created", "Asked for a signed checkpoint", "size"),
    _e("audit.verified", "Verified the audit log", "size", "checkpoints"),
    _e("audit.pruned", "Archived and pruned old entries", "first", "end", "archive"),
    _e("audit.hold.placed", "Placed a legal hold", "hold"),
    _e("audit.hold.released", "Released a legal hold", "hold"),
    _e("audit.alert.raised", "Raised a security alert", "alert", "rule", "person", "count"),
    _e("audit.alert.acknowledged", "Acknowledged a security alert", "alert", "rule"),
    _e("audit.alerts.viewed", "Opened the security alerts", "count"),
    _e("audit.rule.changed", "Changed a detection rule", "rule", "enabled", "threshold", "window_minutes"),
    _e("audit.stream.failed", "Streaming to the SIEM failed", "error"),
    # --- keys ------------------------------------------------------------------------------------
    _e("keys.rotation.started", "Started a key rotation", "version", "count", "resumed"),
    _e("keys.rewrapped", "Re-wrapped data keys under the current key version", "version", "count"),
    _e("keys.retired", "Retired a key-encryption key version", "version"),
    # --- the worker -----------------------------------------------------------------------------
    _e("worker.error", "The worker hit an error", "task", "error"),
)


def get_event(code: str) -> Event:
    try:
        return EVENTS[code]
    except KeyError:
        raise ValueError(f"{code!r} is not an audit event code (see strongroom/audit/events.py)") from None
