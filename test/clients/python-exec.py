"""Exec through the bastion with the official Python client (Debian's python3-kubernetes).

Driven by test/e2e/clients-python.test.ts. Reads one JSON object from argv[1]:
  kubeconfig, namespace, pod, container, command (list), stdin, tty (booleans),
  input (text written to stdin, optional), mode: "run" (wait for the command to end) or
  "echo-then-close" (wait until stdout holds `input`, then close the WebSocket: v4 cannot
  half-close stdin, so closing is all a v4 client can do to a `cat`).
Prints one JSON object: stdout, stderr, returncode (null if the client closed first), error.
"""
import json
import sys
import time

from kubernetes import client, config
from kubernetes.stream import stream

args = json.loads(sys.argv[1])
config.load_kube_config(config_file=args["kubeconfig"])
api = client.CoreV1Api()
result = {"stdout": "", "stderr": "", "returncode": None, "error": None}
try:
    resp = stream(
        api.connect_get_namespaced_pod_exec,
        args["pod"],
        args["namespace"],
        command=args["command"],
        container=args["container"],
        stdin=args["stdin"],
        stdout=True,
        stderr=True,
        tty=args["tty"],
        _preload_content=False,
    )
    if args.get("input"):
        resp.write_stdin(args["input"])
    if args.get("mode") == "echo-then-close":
        deadline = time.time() + 20
        while resp.is_open() and time.time() < deadline and args["input"] not in resp.peek_stdout(timeout=1):
            pass
        result["stdout"] = resp.read_stdout(timeout=0)
        result["open_before_close"] = resp.is_open()
        resp.close()
    else:
        resp.run_forever(timeout=30)
        result["stdout"] = resp.read_channel(1)
        result["stderr"] = resp.read_channel(2)
        result["returncode"] = resp.returncode
except Exception as e:  # the test asserts on what the client reports
    result["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(result))
