"""Port-forward through the bastion with the official Python client (Debian's python3-kubernetes).

Driven by test/e2e/clients-portforward.test.ts. Reads one JSON object from argv[1]:
  kubeconfig, namespace, pod, http_port (an HTTP server in the pod), echo_port (an echo server),
  echo_bytes (how many random bytes to send through the echo port), path (for the HTTP GET).
The client speaks the WebSocket channel protocol (v4.channel.k8s.io, ports in the query); each
port's connection is one socket here, which that client can neither half-close nor see end before
the whole WebSocket does, so the echo is read back by length and the HTTP answer by Content-Length. Prints one JSON object: http (the raw answer), echo_sha256_sent,
echo_sha256_received, echo_length, http_error and echo_error (the error channels), error.
"""
import hashlib
import json
import os
import sys

from kubernetes import client, config
from kubernetes.stream import portforward

args = json.loads(sys.argv[1])
config.load_kube_config(config_file=args["kubeconfig"])
api = client.CoreV1Api()
result = {"error": None}


def read_exactly(sock, n):
    chunks, got = [], 0
    while got < n:
        data = sock.recv(min(65536, n - got))
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def read_http(sock):
    """One HTTP/1.x answer with Content-Length: the channel protocol has no per-port end of data
    (the kubelet only closes the whole WebSocket once every port is done)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + b"\r\n\r\n" + body + read_exactly(sock, length - len(body))


try:
    pf = portforward(
        api.connect_get_namespaced_pod_portforward,
        args["pod"],
        args["namespace"],
        ports="%d,%d" % (args["http_port"], args["echo_port"]),
    )
    echo = pf.socket(args["echo_port"])
    payload = os.urandom(args["echo_bytes"])
    echo.sendall(payload)
    received = read_exactly(echo, len(payload))
    result["echo_sha256_sent"] = hashlib.sha256(payload).hexdigest()
    result["echo_sha256_received"] = hashlib.sha256(received).hexdigest()
    result["echo_length"] = len(received)

    http = pf.socket(args["http_port"])
    http.sendall(("GET %s HTTP/1.1\r\nHost: pod\r\n\r\n" % args["path"]).encode())
    result["http"] = read_http(http).decode("utf-8", "replace")
    result["http_error"] = pf.error(args["http_port"])
    result["echo_error"] = pf.error(args["echo_port"])
    pf.close()
except Exception as e:  # the test asserts on what the client reports
    result["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(result))
