"""TierKV from Python with the generated client (clients/python): put a value, read it back
with its ETag, compare-and-swap with If-Match (and see the 412 a stale ETag gets), list a
prefix.

Usage: TIERKV_API_KEY=tkv_... python3 examples/python/example.py [BASE_URL]   (default
http://127.0.0.1:8080, e.g. against `tierkv dev`, which prints an API key: `admin key: ...`). Needs httpx, attrs and python-dateutil (the client's
dependencies; `pip install ./clients/python` installs them and the client). Exits non-zero
when the server does not behave as shown.
"""

import io
import os
import pathlib
import sys
import uuid

# Use the checked-in client without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"))

from tierkv_client import AuthenticatedClient  # noqa: E402
from tierkv_client.api.kv import get_kv, list_, put_kv  # noqa: E402
from tierkv_client.models import ListPage, Problem  # noqa: E402
from tierkv_client.types import File  # noqa: E402


def expect(cond: bool, what: str) -> None:
    if not cond:
        sys.exit(f"example failed: {what}")


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    token = os.environ.get("TIERKV_API_KEY")
    expect(bool(token), "set TIERKV_API_KEY to an API key")
    # The key goes out as `Authorization: Bearer <key>` (the contract's `api_key` scheme).
    client = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)
    prefix = f"example-py/{uuid.uuid4().hex[:8]}/"
    key = prefix + "greeting"

    def put(k: str, value: bytes, **kw):
        return put_kv.sync_detailed(k, client=client, body=File(payload=io.BytesIO(value)), **kw)

    # Put: 201 Created, the version as ETag.
    r = put(key, b"hello")
    expect(r.status_code == 201, f"PUT answered {r.status_code}")
    etag = r.headers["etag"]
    print(f"put {key} -> {r.status_code}, ETag {etag}")

    # Get: the value and the same ETag.
    g = get_kv.sync_detailed(key, client=client)
    expect(g.status_code == 200 and g.content == b"hello", f"GET answered {g.status_code} {g.content!r}")
    expect(g.headers["etag"] == etag, "GET's ETag differs from PUT's")
    print(f"get {key} -> {g.content!r}, ETag {g.headers['etag']}")

    # Compare-and-swap: write only if the version is still the one read.
    c = put(key, b"hello again", if_match=etag)
    expect(c.status_code == 200, f"CAS with the current ETag answered {c.status_code}")
    print(f"CAS with If-Match {etag} -> {c.status_code}, new ETag {c.headers['etag']}")

    # The old ETag is stale now: 412 precondition_failed, nothing written.
    s = put(key, b"lost update", if_match=etag)
    expect(s.status_code == 412, f"CAS with a stale ETag answered {s.status_code}")
    expect(isinstance(s.parsed, Problem) and str(s.parsed.code.value) == "precondition_failed",
           f"412 without a precondition_failed problem: {s.parsed!r}")
    print(f"CAS with stale If-Match {etag} -> 412 {s.parsed.code.value}")

    # List the prefix.
    put(prefix + "other", b"x")
    page = list_.sync(client=client, prefix=prefix)
    expect(isinstance(page, ListPage), f"list answered {page!r}")
    keys = [item.key for item in page.items]
    expect(keys == [prefix + "greeting", prefix + "other"], f"listed {keys}")
    print(f"list {prefix} -> {keys}")


if __name__ == "__main__":
    main()
