"""A recording HTTP backend for the integration tests.

A ThreadingHTTPServer on 127.0.0.1 (a port picked by the kernel) that
records, for every request it gets, the method, the raw request target and
the headers as a list of (name, value) pairs (duplicates kept, in order), and
answers 200 with a small JSON body.

Two paths behave differently, so that tests can probe the gateway's header
filter:
  /backend-hsts   answers with its own Strict-Transport-Security: max-age=0
"""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # nginx keeps upstream connections alive

    def log_message(self, fmt, *args):   # keep pytest output clean
        pass

    def setup(self):
        super().setup()
        self.server.track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        self.server.record(self.command, self.path, list(self.headers.items()),
                           body)
        out = json.dumps({"ok": True, "method": self.command,
                          "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if self.path.startswith("/backend-hsts"):
            self.send_header("Strict-Transport-Security", "max-age=0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any
    do_OPTIONS = _any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self._records = []
        self._conns = set()

    def record(self, method, path, headers, body):
        with self._lock:
            self._records.append({"method": method, "path": path,
                                  "headers": headers, "body": body})

    def track(self, conn, add):
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def snapshot(self):
        with self._lock:
            return list(self._records)

    def clear(self):
        with self._lock:
            self._records.clear()

    def drop_connections(self):
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RecordingBackend:
    """Start with start(), read .port, .requests(), clear(), stop()."""

    def __init__(self):
        self._server = None
        self._thread = None
        self._stopped = False
        self.port = None

    def start(self):
        self._server = _Server()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="recording-backend",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def requests(self):
        return self._server.snapshot() if self._server else []

    def clear(self):
        if self._server:
            self._server.clear()

    def stop(self):
        """Stop listening and cut every open (keep-alive) connection, so a
        gateway that talks to us next gets a connection error."""
        if self._server is None or self._stopped:
            return
        self._stopped = True
        self._server.shutdown()           # returns once serve_forever exits
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)
