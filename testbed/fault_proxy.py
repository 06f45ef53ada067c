#!/usr/bin/env python3
"""A fault-injecting proxy for the integration tests.

    fault_proxy.py --upstream 127.0.0.1:5000 --fail-manifest-puts 2
    fault_proxy.py --upstream 127.0.0.1:4566 --delay-ms 5000 --delay-match '^PUT /.*-admin-ui/'
    fault_proxy.py --raw --listen-unix /tmp/x/docker.sock --upstream-unix /var/run/docker.sock

Prints the port it listens on (one line; `unix` with --listen-unix) once it accepts
connections. In HTTP mode it proxies one request per connection (it asks the upstream
to close after each response), so each request can be looked at:
  --fail-manifest-puts N   the first N `PUT .../manifests/...` get a 500, as a registry
                           having a bad moment would answer;
  --drop-manifest-puts N   the first N such requests have their connection closed;
  --fail-match REGEX --fail-count N
                           the first N requests whose "METHOD PATH" matches REGEX get a
                           500 (e.g. '^PATCH .*/blobs/uploads/': a blob upload failing);
  --mangle-manifest-gets   GET .../manifests/... answers carry one more byte (a space)
                           and no Docker-Content-Digest: a registry serving other bytes;
  --delay-ms MS --delay-match REGEX
                           requests whose "METHOD PATH" matches REGEX wait MS first.
With --raw it pipes bytes both ways without reading them (the Docker API, whose
builds hijack their connection); --count-file PATH keeps there the number of bytes
the clients have sent upstream so far (rewritten as they flow), which is what a
build context costs on the wire. Killing the proxy is a server going away: every
connection through it drops and new ones are refused. Stops on SIGTERM.
"""
import argparse
import asyncio
import os
import re
import sys


async def pipe(reader, writer, counted=None):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if counted is not None:
                counted(len(data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def log(message: str) -> None:
    print(f"fault_proxy: {message}", file=sys.stderr, flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--listen-unix")
    parser.add_argument("--upstream")
    parser.add_argument("--upstream-unix")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--count-file")
    parser.add_argument("--fail-manifest-puts", type=int, default=0)
    parser.add_argument("--drop-manifest-puts", type=int, default=0)
    parser.add_argument("--fail-match", default="")
    parser.add_argument("--fail-count", type=int, default=0)
    parser.add_argument("--mangle-manifest-gets", action="store_true")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--delay-match", default="")
    args = parser.parse_args()
    if not (args.upstream or args.upstream_unix):
        parser.error("--upstream or --upstream-unix is required")
    budget = {"fail": args.fail_manifest_puts, "drop": args.drop_manifest_puts, "match": args.fail_count}
    failing = re.compile(args.fail_match) if args.fail_match else None
    delayed = re.compile(args.delay_match) if args.delay_ms else None

    async def connect_upstream():
        if args.upstream_unix:
            return await asyncio.open_unix_connection(args.upstream_unix)
        host, port = args.upstream.rsplit(":", 1)
        return await asyncio.open_connection(host, int(port))

    sent_upstream = [0]

    def count(n):
        sent_upstream[0] += n
        with open(args.count_file + ".tmp", "w") as out:
            out.write(str(sent_upstream[0]))
        os.replace(args.count_file + ".tmp", args.count_file)

    counted = count if args.count_file else None
    if counted is not None:
        counted(0)

    async def handle_raw(client_reader, client_writer):
        up_reader, up_writer = await connect_upstream()
        await asyncio.gather(pipe(client_reader, up_writer, counted), pipe(up_reader, client_writer))

    async def handle_http(client_reader, client_writer):
        try:
            head = await client_reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            # Not HTTP (the daemon tries TLS first on an insecure registry): hang up.
            client_writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        if delayed is not None and delayed.search(f"{method} {path}"):
            log(f"delaying {method} {path} by {args.delay_ms} ms")
            await asyncio.sleep(args.delay_ms / 1000)
        if failing is not None and budget["match"] > 0 and failing.search(f"{method} {path}"):
            budget["match"] -= 1
            log(f"500 for {method} {path} (--fail-match)")
            client_writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await client_writer.drain()
            client_writer.close()
            return
        if method == "PUT" and "/manifests/" in path:
            if budget["drop"] > 0:
                budget["drop"] -= 1
                log(f"dropped {method} {path}")
                client_writer.transport.abort()
                return
            if budget["fail"] > 0:
                budget["fail"] -= 1
                log(f"500 for {method} {path}")
                client_writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await client_writer.drain()
                client_writer.close()
                return
        headers = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
        request = "\r\n".join([lines[0], *headers, "Connection: close", "", ""]).encode("latin-1")
        up_reader, up_writer = await connect_upstream()
        up_writer.write(request)
        await up_writer.drain()
        if args.mangle_manifest_gets and method == "GET" and "/manifests/" in path:
            await mangle(up_reader, client_writer)
            return
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

    async def mangle(up_reader, client_writer):
        """Reads the whole answer (the upstream closes after it), adds a byte to a 200's body."""
        answer = await up_reader.read()
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if " 200 " in lines[0] + " ":
            body += b" "
            kept = [l for l in lines[1:] if not l.lower().startswith(("content-length:", "docker-content-digest:", "etag:"))]
            lines = [lines[0], *kept, f"Content-Length: {len(body)}"]
            log(f"mangled a manifest GET ({lines[0]})")
        client_writer.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)
        await client_writer.drain()
        client_writer.close()

    handle = handle_raw if args.raw else handle_http
    if args.listen_unix:
        server = await asyncio.start_unix_server(handle, args.listen_unix)
        print("unix", flush=True)
    else:
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
