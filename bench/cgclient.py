#!/usr/bin/python3
"""A bounded keep-alive HTTPS client for bench/callgrind.sh.

    cgclient.py PORT CERT COOKIE CONNS WARMUP REQUESTS

Opens CONNS TLS connections to 127.0.0.1:PORT, sends WARMUP requests on
each, prints "ready", waits for a line on standard input (the caller zeroes
the server's counters then), sends REQUESTS requests on each connection
(concurrently across connections), checks every answer is 200, and prints
"done N" with the number of requests of the measured part. Connections are
opened before the measured part, so TLS handshakes are not counted.
"""
import asyncio
import ssl
import sys


async def one(reader, writer, req):
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    if status != 200:
        raise SystemExit("status %d" % status)


async def conn_loop(conn, req, n):
    reader, writer = conn
    for _ in range(n):
        await one(reader, writer, req)


async def main():
    port, cert, cookie = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    conns, warm, n = (int(x) for x in sys.argv[4:7])
    ctx = ssl.create_default_context(cafile=cert)
    req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
           "Cookie: __Host-gatehouse=%s\r\n\r\n" % cookie).encode()
    cs = [await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                        server_hostname="127.0.0.1")
          for _ in range(conns)]
    await asyncio.gather(*(conn_loop(c, req, warm) for c in cs))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(conn_loop(c, req, n) for c in cs))
    print("done %d" % (conns * n), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for _, w in cs:
        w.close()


asyncio.run(main())
