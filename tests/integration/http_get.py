"""One HTTP/1.0 GET to the end of the answer, for the client scripts the tests run in other
namespaces (they put this folder on sys.path): one copy of the request for all of them."""

import socket


def get(host, port, timeout=20, local=None):
    """GET / on HOST:PORT, read until the server closes: (status line, body), as bytes. LOCAL, a
    list, gets the client's (address, port) once connected: a failure after it came after the
    handshake."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        if local is not None:
            local.append(s.getsockname())
        s.sendall(b'GET / HTTP/1.0\r\nHost: x\r\n\r\n')
        data = b''
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    return head.split(b'\r\n')[0], body
