#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal and answers its prompts, as an operator would.

    pty_run.py --timeout 120 --expect 'AWS profile' --send '\r' --expect 'Type y' --send 'n\r' -- deploy ...

Each --expect waits (up to --timeout seconds overall) until the text has appeared in the
output since the previous match, then the paired --send is typed. Everything the command
printed goes to stdout at the end; the exit code is the command's (124 on a timeout,
125 when an expected text never came and the command ended).
"""
import argparse
import os
import pty
import select
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--send", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    steps = list(zip(args.expect, [s.encode().decode("unicode_escape") for s in args.send]))

    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    deadline = time.monotonic() + args.timeout
    output = b""
    searched_from = 0
    status = None
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.stdout.write(output.decode(errors="replace"))
            sys.stdout.write(f"\n[pty_run] timeout waiting for {steps[0][0] if steps else 'exit'!r}\n")
            return 124
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            output += chunk
            text = output.decode(errors="replace")
            while steps and steps[0][0] in text[searched_from:]:
                expected, send = steps.pop(0)
                searched_from = text.index(expected, searched_from) + len(expected)
                time.sleep(0.2)
                os.write(fd, send.encode())
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = code
            # Drain what is left.
            while True:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    break
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            break
    if status is None:
        _, status = os.waitpid(pid, 0)
    sys.stdout.write(output.decode(errors="replace"))
    if steps:
        sys.stdout.write(f"\n[pty_run] the command ended before {steps[0][0]!r}\n")
        return 125
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
