"""A gRPC client nobody here wrote: Python's grpcio (Debian's python3-grpcio), for the tests.

Reads one JSON command on stdin, makes the call with grpcio's generic methods (no stubs: messages
travel as bytes, encoded and decoded by the test with protobuf-es), and prints one JSON result:
{"messages": [hex, ...], "code": "OK" | grpc status name, "details": str}.

Command: {"target": "127.0.0.1:PORT", "kind": "unary" | "server_stream" | "bidi", "method": path,
"requests": [hex, ...], "metadata": {k: v}, "timeout": seconds | null, "gzip": bool,
"until": n (stop reading after n messages; a stream is then canceled, a bidi one half-closed)}.
"""
import json
import sys
import threading

import grpc


def main():
    cmd = json.load(sys.stdin)
    channel = grpc.insecure_channel(cmd["target"])
    metadata = list(cmd.get("metadata", {}).items())
    kw = {"metadata": metadata, "timeout": cmd.get("timeout")}
    if cmd.get("gzip"):
        kw["compression"] = grpc.Compression.Gzip
    requests = [bytes.fromhex(r) for r in cmd.get("requests", [])]
    until = cmd.get("until")
    out = {"messages": [], "code": "OK", "details": ""}
    try:
        if cmd["kind"] == "unary":
            response = channel.unary_unary(cmd["method"])(requests[0], **kw)
            out["messages"].append(response.hex())
        elif cmd["kind"] == "server_stream":
            call = channel.unary_stream(cmd["method"])(requests[0], **kw)
            for response in call:
                out["messages"].append(response.hex())
                if until is not None and len(out["messages"]) >= until:
                    call.cancel()
                    break
        else:
            # Requests go out one by one; the request side is closed once `until` responses came.
            done = threading.Event()

            def request_iterator():
                for r in requests:
                    yield r
                done.wait(timeout=10)

            call = channel.stream_stream(cmd["method"])(request_iterator(), **kw)
            for response in call:
                out["messages"].append(response.hex())
                if until is not None and len(out["messages"]) >= until:
                    done.set()
    except grpc.RpcError as err:
        code = err.code()
        if not (code == grpc.StatusCode.CANCELLED and until is not None and len(out["messages"]) >= until):
            out["code"] = code.name
            out["details"] = err.details() or ""
    finally:
        channel.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
