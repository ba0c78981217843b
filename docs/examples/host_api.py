"""A host application talking to domainguard's HTTP API with requests.

Tell domainguard about a verified address, then ask at password-reset time
whether the address may still be trusted. Configure with
DOMAINGUARD_API_URL (default http://127.0.0.1:8081) and DOMAINGUARD_API_TOKEN
(a token from the server's DOMAINGUARD_API_TOKENS).

    python3 host_api.py ada@example.org u-1 [EMAIL USER_ID ...]
"""
import json
import os
import sys
import uuid
from datetime import datetime, timezone

import requests

API = os.environ.get("DOMAINGUARD_API_URL", "http://127.0.0.1:8081")
TOKEN = os.environ["DOMAINGUARD_API_TOKEN"]
session = requests.Session()
session.headers["Authorization"] = "Bearer " + TOKEN


def email_verified(user_id, email, verified_at):
    """Send accounts.email.verified as a structured-mode CloudEvent."""
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),  # keep it when retrying: the same id is stored once
        "source": "https://host.example/accounts",
        "type": "io.domainguard.accounts.email.verified",
        "time": datetime.now(timezone.utc).isoformat(),
        "datacontenttype": "application/json",
        "data": {"user_id": user_id, "email": email, "verified_at": verified_at},
    }
    r = session.post(API + "/v1/events", data=json.dumps(event),
                     headers={"Content-Type": "application/cloudevents+json"}, timeout=10)
    if r.status_code != 202:
        raise SystemExit("event refused: %d %s" % (r.status_code, r.text))
    return r.json()


def trusted_for_reset(email, user_id=None):
    """True when the address may receive a password-reset mail."""
    params = {"user_id": user_id} if user_id else None
    r = session.get(API + "/v1/addresses/" + requests.utils.quote(email, safe="@"), params=params, timeout=5)
    if r.status_code == 404:
        return None  # not watched (yet): fall back to the host's own rules
    r.raise_for_status()
    return r.json()["trusted_for_reset"]


if __name__ == "__main__":
    args = sys.argv[1:] or ["ada@example.org", "u-1"]
    for email, user in zip(args[::2], args[1::2]):
        accepted = email_verified(user, email, "2025-01-02T03:04:05Z")
        print(email, "accepted", accepted["id"], "sequence", accepted["sequence"])
        print(email, "trusted_for_reset", json.dumps(trusted_for_reset(email, user)))
