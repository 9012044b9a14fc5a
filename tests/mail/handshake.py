"""A TLS handshake between two contexts through memory buffers: real OpenSSL, no sockets."""

import ssl


def handshake(client: ssl.SSLContext, server: ssl.SSLContext, server_hostname: str) -> ssl.SSLObject:
    """Run the handshake to its end; return the client side. Raises what the client raises."""
    client_in, client_out, server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        _step(client_side, client_out, server_in)
        _step(server_side, server_out, client_in)
    return client_side


def _step(side: ssl.SSLObject, outgoing: ssl.MemoryBIO, peer_incoming: ssl.MemoryBIO) -> None:
    try:
        side.do_handshake()
    except ssl.SSLWantReadError:
        pass
    peer_incoming.write(outgoing.read())
