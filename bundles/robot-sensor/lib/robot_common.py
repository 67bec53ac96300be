"""What the sensor, the logger and the health check share: the address, bounded HTTP reads."""
import json
import os
import urllib.error
import urllib.request

# An answer is read up to this many bytes: anything bigger is no answer of our sensor.
MAX_BODY = 64 * 1024


def port():
    """The sensor's port: $SENSOR_PORT (tests run it on a free one), else 8080."""
    value = os.environ.get("SENSOR_PORT", "8080")
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise SystemExit(f"robot-sensor: SENSOR_PORT must be a port number from 1 to 65535, found {value!r}")
    return int(value)


def get_json(path, timeout):
    """GET http://127.0.0.1:PORT/PATH within `timeout` seconds: (status, parsed body). Raises OSError or ValueError."""
    url = f"http://127.0.0.1:{port()}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            status, body = res.status, res.read(MAX_BODY + 1)
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ValueError(f"{url}: the answer is bigger than {MAX_BODY} bytes")
    return status, json.loads(body.decode("utf-8"))
