"""atrest's service accounts through real third-party clients: requests' HTTP Digest auth for the
Admin API, and requests-oauthlib (oauthlib's client-credentials flow, as Atlas's SDKs use it) for
`POST /api/oauth/token`, bearer calls and revocation."""

import os
import re
import shutil
import subprocess
import tempfile
import threading

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2.rfc6749.errors import InvalidClientError
from requests.auth import HTTPBasicAuth, HTTPDigestAuth
from requests_oauthlib import OAuth2Session

from conftest import atrest_bin

V2023 = "application/vnd.atlas.2023-01-01+json"
V2024 = "application/vnd.atlas.2024-08-05+json"


@pytest.fixture(scope="module")
def atrest():
    data_dir = tempfile.mkdtemp(prefix="atrest-oauth-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATREST_")}
    env["ATREST_LOG"] = "warn"
    proc = subprocess.Popen(
        [atrest_bin(), "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    found = {}
    ready = threading.Event()

    def pump():
        for line in proc.stdout:
            m = re.match(r"atrest listening on (\S+)", line)
            if m and "url" not in found:
                found["url"] = m.group(1)
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert ready.wait(60), "atrest did not start"
        creds = dict(l.split("=", 1) for l in open(os.path.join(data_dir, "bootstrap-credentials")).read().splitlines() if "=" in l)
        yield found["url"], creds
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_client_credentials_with_requests_oauthlib(atrest, monkeypatch):
    url, creds = atrest
    digest = HTTPDigestAuth(creds["ATREST_PUBLIC_KEY"], creds["ATREST_PRIVATE_KEY"])
    org = creds["ATREST_ORG_ID"]
    r = requests.post(f"{url}/api/atlas/v2/groups", auth=digest, headers={"Accept": V2023},
                      json={"name": "oauth", "orgId": org})
    assert r.status_code == 200, r.text
    group = r.json()["id"]
    r = requests.post(f"{url}/api/atlas/v2/orgs/{org}/serviceAccounts", auth=digest, headers={"Accept": V2024},
                      json={"name": "python", "description": "requests-oauthlib", "roles": ["ORG_MEMBER"],
                            "secretExpiresAfterHours": 24})
    assert r.status_code == 201, r.text
    client_id = r.json()["clientId"]
    secret = r.json()["secrets"][0]["secret"]
    r = requests.post(f"{url}/api/atlas/v2/groups/{group}/serviceAccounts/{client_id}:invite", auth=digest,
                      headers={"Accept": V2024}, json={"roles": ["GROUP_READ_ONLY"]})
    assert r.status_code == 200, r.text

    # oauthlib insists on HTTPS unless told the transport is trusted (loopback here).
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    session = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
    token = session.fetch_token(f"{url}/api/oauth/token", auth=HTTPBasicAuth(client_id, secret))
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600

    r = session.get(f"{url}/api/atlas/v2/groups/{group}/encryptionAtRest", headers={"Accept": V2023})
    assert r.status_code == 200, r.text
    assert r.json()["awsKms"]["enabled"] is False
    assert int(r.headers["RateLimit-Limit"]) > 0 and "RateLimit-Remaining" in r.headers
    r = session.patch(f"{url}/api/atlas/v2/groups/{group}", headers={"Accept": V2023}, json={"name": "renamed"})
    assert r.status_code == 403 and r.json()["errorCode"] == "ACCESS_FORBIDDEN", r.text

    # The library understands atrest's refusals (RFC 6749 error format).
    with pytest.raises(InvalidClientError):
        OAuth2Session(client=BackendApplicationClient(client_id=client_id)).fetch_token(
            f"{url}/api/oauth/token", auth=HTTPBasicAuth(client_id, "mdb_sa_sk_wrong"))

    # Revocation ends the token.
    r = requests.post(f"{url}/api/oauth/revoke", auth=HTTPBasicAuth(client_id, secret),
                      data={"token": token["access_token"], "token_type_hint": "access_token"})
    assert r.status_code == 200, r.text
    r = session.get(f"{url}/api/atlas/v2/groups/{group}/encryptionAtRest", headers={"Accept": V2023})
    assert r.status_code == 401 and r.json()["errorCode"] == "USER_UNAUTHORIZED"
