#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of the test-bed registry.

    fault_proxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:5000 --fail-manifest-puts 2

Prints the port it listens on (one line), then proxies every request to the upstream,
one request per connection (it asks the upstream to close after each response). The
first N `PUT .../manifests/...` requests get a 500 instead, as a registry having a bad
moment would answer; --drop-manifest-puts N closes the connection on them instead.
Stops on SIGTERM.
"""
import argparse
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--fail-manifest-puts", type=int, default=0)
    parser.add_argument("--drop-manifest-puts", type=int, default=0)
    args = parser.parse_args()
    up_host, up_port = args.upstream.rsplit(":", 1)
    budget = {"fail": args.fail_manifest_puts, "drop": args.drop_manifest_puts}

    async def handle(client_reader, client_writer):
        try:
            head = await client_reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            # Not HTTP (the daemon tries TLS first on an insecure registry): hang up.
            client_writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        if method == "PUT" and "/manifests/" in path:
            if budget["drop"] > 0:
                budget["drop"] -= 1
                print(f"fault_proxy: dropped {method} {path}", file=sys.stderr, flush=True)
                client_writer.transport.abort()
                return
            if budget["fail"] > 0:
                budget["fail"] -= 1
                print(f"fault_proxy: 500 for {method} {path}", file=sys.stderr, flush=True)
                client_writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await client_writer.drain()
                client_writer.close()
                return
        headers = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
        request = "\r\n".join([lines[0], *headers, "Connection: close", "", ""]).encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
        up_writer.write(request)
        await up_writer.drain()
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, host, int(port))
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
