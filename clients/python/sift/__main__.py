"""``python3 -m sift``: publish, subscribe, request and read stats from the
command line, like the C++ ``sift`` command (a small subset).

    python3 -m sift pub demo.x hello --header region=eu
    python3 -m sift sub 'demo.>' --count 10
    python3 -m sift req svc.time '' --timeout 2
    python3 -m sift stats

Exit status: 0 success, 1 a failure (no broker, refused by it), 2 a usage
error (argparse's, or an --endpoint the client refuses at once).
"""

import argparse
import sys
from typing import List, Optional


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m sift",
                                description="sift's Python client")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:7440",
                   help="broker endpoint (default %(default)s)")
    p.add_argument("--connect-timeout", type=float, default=5.0,
                   metavar="SECONDS")
    sub = p.add_subparsers(dest="command", required=True)

    pub = sub.add_parser("pub", help="publish one message")
    pub.add_argument("topic")
    pub.add_argument("payload", nargs="?", default="")
    pub.add_argument("--header", action="append", default=[],
                     metavar="KEY=VALUE")
    pub.add_argument("--retain", action="store_true")
    pub.add_argument("--delay", type=float, metavar="SECONDS")

    s = sub.add_parser("sub", help="print messages (Ctrl-C stops)")
    s.add_argument("pattern")
    s.add_argument("--queue-group")
    s.add_argument("--filter")
    s.add_argument("--count", type=int, default=0,
                   help="stop after this many messages (0: never)")
    s.add_argument("--ack", action="store_true",
                   help="explicit acks: ack each message once printed")

    req = sub.add_parser("req", help="send a request, print the reply")
    req.add_argument("topic")
    req.add_argument("payload", nargs="?", default="")
    req.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")

    sub.add_parser("stats", help="print the broker's counters")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(argv)
    try:
        import sift
    except ImportError as e:
        print(f"python3 -m sift: {e}", file=sys.stderr)
        return 2
    try:
        # A malformed --endpoint is a usage error (exit 2), as in sift; so
        # is inproc://, which reaches only a broker in this process.
        sift.client.check_endpoint(args.endpoint)
        if args.endpoint.startswith("inproc://"):
            raise sift.SiftError(
                f"cannot connect to {args.endpoint!r}: inproc:// reaches "
                "only a broker in the same process (use tcp:// or ipc://)")
    except sift.SiftError as e:
        print(f"python3 -m sift: {e}", file=sys.stderr)
        return 2
    try:
        with sift.Client(args.endpoint, name="python3 -m sift",
                         connect_timeout=args.connect_timeout) as client:
            if args.command == "pub":
                headers = [tuple(h.split("=", 1)) if "=" in h else (h, "")
                           for h in args.header]
                client.publish_confirmed(args.topic, args.payload,
                                         headers=headers, retain=args.retain,
                                         delay=args.delay)
                print(f"published 1 message to {args.topic}")
            elif args.command == "sub":
                s = client.subscribe(args.pattern,
                                     queue_group=args.queue_group,
                                     filter=args.filter,
                                     ack=True if args.ack else None)
                n = 0
                for m in s:
                    headers = "".join(f" {k}={v.decode('utf-8', 'replace')}"
                                      for k, v in m.headers)
                    print(f"[{m.topic}]{headers} {m.text}", flush=True)
                    if args.ack:
                        m.ack()
                    n += 1
                    if args.count and n >= args.count:
                        break
            elif args.command == "req":
                reply = client.request(args.topic, args.payload,
                                       timeout=args.timeout)
                print(reply.text)
            elif args.command == "stats":
                print(client.stats(), end="")
    except KeyboardInterrupt:
        return 130
    except sift.SiftError as e:
        print(f"python3 -m sift: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
