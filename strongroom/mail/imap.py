"""Read an IMAP folder over TLS: list new UIDs, fetch with BODY.PEEK, mark after commit, IDLE.

The caller decides what is new (UIDVALIDITY and the last UID it stored) and marks messages
only after its database transaction committed; this module only speaks IMAP.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import TracebackType

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from strongroom.mail.endpoints import MailEndpoint
from strongroom.mail.errors import MailConnectionError
from strongroom.mail.tls import client_context

log = logging.getLogger(__name__)
FETCH_BATCH = 25


class ImapMailbox:
    """One connection to one folder. Use as a context manager."""

    def __init__(self, endpoint: MailEndpoint, password: str | None, *, ca_file: str | None, timeout: float) -> None:
        self.endpoint = endpoint
        self._password = password
        self._ca_file = ca_file
        self._timeout = timeout
        self._client: IMAPClient | None = None
        self.uidvalidity = 0
        self.capabilities: frozenset[bytes] = frozenset()

    # --- connection ----------------------------------------------------------------------

    def __enter__(self) -> ImapMailbox:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise MailConnectionError("not connected")
        return self._client

    def connect(self) -> None:
        """Connect, secure the connection, log in and select the folder.

        With imap+starttls:// the password is sent only after STARTTLS succeeded; a server
        that does not offer STARTTLS is refused instead of being talked to in plaintext.
        """
        endpoint = self.endpoint
        context = client_context(self._ca_file)
        if endpoint.security == "tls":
            client = IMAPClient(endpoint.host, port=endpoint.port, ssl=True, ssl_context=context, timeout=self._timeout)
        else:
            client = IMAPClient(endpoint.host, port=endpoint.port, ssl=False, timeout=self._timeout)
            try:
                if b"STARTTLS" not in client.capabilities():
                    raise MailConnectionError(
                        f"{endpoint.host}:{endpoint.port} does not offer STARTTLS; Strongroom never "
                        "logs in over plaintext. Use imaps:// if the server expects TLS from the start."
                    )
                client.starttls(context)
            except BaseException:
                client.shutdown()
                raise
        self._client = client
        try:
            client.login(endpoint.username, self._password or "")
            self.capabilities = frozenset(client.capabilities())
            selected = client.select_folder(endpoint.folder)
        except BaseException:
            self.close()
            raise
        self.uidvalidity = int(selected.get(b"UIDVALIDITY", 0))

    def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        try:
            client.logout()
        except (IMAPClientError, OSError):
            try:
                client.shutdown()
            except OSError:
                pass

    @property
    def has_idle(self) -> bool:
        return b"IDLE" in self.capabilities

    # --- reading -------------------------------------------------------------------------

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid`, ascending. (A range n:* always includes the last message,
        even when its UID is below n; that one is filtered out here.)"""
        uids = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in uids if uid > last_uid)

    def unseen_uids(self) -> list[int]:
        return sorted(self.client.search(["UNSEEN"]))

    def sizes(self, uids: list[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            for uid, data in self.client.fetch(chunk, ["RFC822.SIZE"]).items():
                sizes[uid] = int(data.get(b"RFC822.SIZE", 0))
        return sizes

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        """Yield (uid, raw bytes) in UID order. BODY.PEEK[] leaves the \\Seen flag alone."""
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            data = self.client.fetch(chunk, ["BODY.PEEK[]"])
            for uid in chunk:
                item = data.get(uid)
                if item is None:
                    continue  # expunged meanwhile
                yield uid, bytes(item.get(b"BODY[]") or b"")

    # --- marking -------------------------------------------------------------------------

    def mark_processed(self, uids: list[int], *, move_to: str = "") -> None:
        """Flag the messages \\Seen, or move them to `move_to` (created if missing)."""
        if not uids:
            return
        client = self.client
        if not move_to:
            client.add_flags(uids, [b"\\Seen"], silent=True)
            return
        if not client.folder_exists(move_to):
            client.create_folder(move_to)
        if b"MOVE" in self.capabilities:
            client.move(uids, move_to)
        else:
            client.copy(uids, move_to)
            client.add_flags(uids, [b"\\Deleted"], silent=True)
            if b"UIDPLUS" in self.capabilities:
                client.uid_expunge(uids)
            else:
                client.expunge()

    # --- waiting -------------------------------------------------------------------------

    def wait_for_news(self, seconds: float) -> bool:
        """IDLE up to `seconds`; True when the server announced a change to the folder."""
        client = self.client
        client.idle()
        try:
            responses = client.idle_check(timeout=seconds)
        finally:
            client.idle_done()
        return any(isinstance(r, tuple) and len(r) > 1 and r[1] in {b"EXISTS", b"RECENT", b"FETCH"} for r in responses)

    def noop(self) -> None:
        self.client.noop()
