"""Checks a `secure.yaml` deployment from outside notif-infra's own code, with nats-py and only
the generated artefacts (`.creds` files and `ca.pem`). Prints one JSON object of findings and
exits non-zero when a check fails.

usage: secure_clients.py STATE_DIR HUB_URL LEAF_URL
"""
import asyncio
import json
import os
import ssl
import sys

import nats
from nats.errors import NoServersError

state, hub_url, leaf_url = sys.argv[1], sys.argv[2], sys.argv[3]
ca = os.path.join(state, "pki", "ca.pem")
creds = lambda *p: os.path.join(state, "auth", *p)
findings = {}
failures = []


def check(name, ok, detail=""):
    findings[name] = {"ok": bool(ok), "detail": str(detail)}
    if not ok:
        failures.append(name)


def tls():
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


async def connect(url, user_creds=None, errors=None):
    async def on_error(e):
        if errors is not None:
            errors.append(str(e))

    return await nats.connect(
        url,
        user_credentials=user_creds,
        tls=tls(),
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=3,
        max_reconnect_attempts=0,
    )


async def received(sub, timeout=1.0):
    out = []
    try:
        while True:
            msg = await sub.next_msg(timeout=timeout)
            out.append((msg.subject, msg.data.decode()))
            timeout = 0.2
    except Exception:
        pass
    return out


async def main():
    # Without credentials the server refuses the connection.
    try:
        nc = await connect(hub_url)
        await nc.close()
        check("anonymous_rejected", False, "connected without credentials")
    except Exception as e:
        check("anonymous_rejected", "authorization" in str(e).lower(), repr(e))

    acme_errors = []
    acme = await connect(hub_url, creds("ACME", "acme-app.creds"), acme_errors)
    partner = await connect(hub_url, creds("PARTNER", "partner-app.creds"))
    # notif-infra's own unrestricted users see everything each account carries.
    acme_all = await connect(hub_url, creds("_notif-infra", "ACME.creds"))
    partner_all = await connect(hub_url, creds("_notif-infra", "PARTNER.creds"))

    imported = await partner.subscribe("acme.orders.>")
    everything_acme = await acme_all.subscribe(">")
    everything_partner = await partner_all.subscribe(">")
    for c in (partner, acme_all, partner_all):
        await c.flush()
    await asyncio.sleep(0.3)  # interest crosses the cluster

    await acme.publish("orders.created", b"order-1")
    await acme_all.publish("billing.invoice", b"secret-acme")
    await partner.publish("partner.news", b"partner-1")
    for c in (acme, acme_all, partner):
        await c.flush()

    got = await received(imported)
    check("import_delivers", got == [("acme.orders.created", "order-1")], got)
    seen_by_partner = [m for m in await received(everything_partner) if not m[0].startswith("_")]
    check(
        "partner_sees_only_the_import",
        sorted(seen_by_partner) == sorted([("acme.orders.created", "order-1"), ("partner.news", "partner-1")]),
        seen_by_partner,
    )
    seen_by_acme = [m for m in await received(everything_acme) if not m[0].startswith("_") and not m[0].startswith("$")]
    check("acme_never_sees_partner", all(not s.startswith("partner") for s, _ in seen_by_acme), seen_by_acme)

    # Denied by the user's permissions: the server reports a permissions violation.
    await acme.publish("orders.internal.audit", b"x")
    await acme.subscribe("billing.>")
    await acme.flush()
    await asyncio.sleep(0.5)
    check("publish_violation", any("permissions violation for publish" in e.lower() and "orders.internal.audit" in e for e in acme_errors), acme_errors)
    check("subscribe_violation", any("permissions violation for subscription" in e.lower() and "billing.>" in e for e in acme_errors), acme_errors)

    # JetStream inside ACME, within the account's limits.
    js = acme.jetstream()
    ack = await js.publish("orders.paid", b"order-1")
    check("jetstream_publish", ack.stream == "ORDERS" and ack.seq >= 1, ack)
    info = await js.account_info()
    check("jetstream_account_limits", info.limits.max_memory == 64 * 1024 * 1024 and info.limits.max_streams == 10, info.limits)

    # Through the leafnode bound to ACME: a leaf client's message reaches the hub's ACME users.
    leaf = await connect(leaf_url, creds("ACME", "acme-app.creds"))
    hub_sub = await acme_all.subscribe("orders.from-leaf")
    await acme_all.flush()
    await asyncio.sleep(0.3)
    await leaf.publish("orders.from-leaf", b"leaf-1")
    await leaf.flush()
    got = await received(hub_sub)
    check("leaf_to_hub", got == [("orders.from-leaf", "leaf-1")], got)

    for c in (acme, partner, acme_all, partner_all, leaf):
        await c.close()


asyncio.run(main())
print(json.dumps(findings, indent=1))
sys.exit(1 if failures else 0)
