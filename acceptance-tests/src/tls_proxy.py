#!/usr/bin/env python3
"""TLS in front of a plain-TCP test server: tests need an HTTPS endpoint with a certificate of
their own CA (moto and s3s-fs speak only HTTP). Bytes are relayed unchanged both ways.

    tls_proxy.py LISTEN_HOST LISTEN_PORT CERT KEY TARGET_HOST TARGET_PORT

Prints "listening" once bound.
"""

import asyncio
import ssl
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # already closed by the peer
            pass


async def main():
    host, port, cert, key, target_host, target_port = sys.argv[1:7]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

    server = await asyncio.start_server(handle, host, int(port), ssl=ctx)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
