#!/usr/bin/env python3
"""Provision a freshly bootstrapped Keystone for the tests (run by up.sh).

Through the identity API, as the bootstrap admin:
  - project "service" and user "neutron", admin on it (Neutron's service
    user: keystonemiddleware validates tokens with it);
  - service type "network" (name neutron) with a public, an internal and an
    admin endpoint in the region, all with --network-url;
  - project "demo" with user "demo-member" (role member) and user
    "demo-reader" (role reader);
  - an application credential of admin's (on project admin) and one of the
    demo member's (on project demo), each made with the owner's own token;
and then authenticates as each of them, to prove it all works.

Writes STATE/clouds.yaml (clouds oslo-admin, oslo-member, oslo-appcred,
oslo-member-appcred) and prints NAME=value lines for up.sh's exports.
Passwords and secrets are random: test-only values.
"""

import argparse
import json
import os
import secrets
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from keystone_api import Keystone, KeystoneError  # noqa: E402

DOMAIN = "default"  # the Default domain's id


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="http://127.0.0.1:PORT/v3")
    p.add_argument("--admin-password", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--network-url", required=True)
    p.add_argument("--state", required=True)
    args = p.parse_args()

    ks = Keystone(args.url)
    admin = ks.password_token("admin", args.admin_password, project_name="admin")
    roles = {r["name"]: r["id"] for r in ks.must(admin, "GET", "/roles")["roles"]}
    missing = {"admin", "member", "reader"} - set(roles)
    if missing:
        raise KeystoneError(f"bootstrap made no role {', '.join(sorted(missing))}")

    def project(name, description):
        return ks.must(admin, "POST", "/projects", {"project": {
            "name": name, "domain_id": DOMAIN, "description": description, "enabled": True}})["project"]

    def user(name, password, project_id, role):
        u = ks.must(admin, "POST", "/users", {"user": {
            "name": name, "domain_id": DOMAIN, "password": password, "default_project_id": project_id,
            "enabled": True}})["user"]
        ks.must(admin, "PUT", f"/projects/{project_id}/users/{u['id']}/roles/{roles[role]}")
        return u

    def app_credential(token, name):
        c = ks.must(token, "POST", f"/users/{token.user_id}/application_credentials", {"application_credential": {
            "name": name, "description": "oslo-nautobot tests"}})["application_credential"]
        return c["id"], c["secret"]

    service = project("service", "OpenStack services' own users")
    neutron_password = secrets.token_hex(16)
    user("neutron", neutron_password, service["id"], "admin")
    ks.set_endpoints(admin, "network", "neutron", args.network_url, args.region)

    demo = project("demo", "an ordinary project: a member and a reader")
    member_password, reader_password = secrets.token_hex(16), secrets.token_hex(16)
    user("demo-member", member_password, demo["id"], "member")
    user("demo-reader", reader_password, demo["id"], "reader")

    admin_cred = app_credential(admin, "oslo-nautobot-admin")
    member = ks.password_token("demo-member", member_password, project_id=demo["id"])
    member_cred = app_credential(member, "oslo-nautobot-member")

    # Each identity authenticates, and gets what it should.
    checks = [
        (ks.password_token("neutron", neutron_password, project_name="service"), service["id"], "admin"),
        (member, demo["id"], "member"),
        (ks.password_token("demo-reader", reader_password, project_id=demo["id"]), demo["id"], "reader"),
        (ks.app_credential_token(*admin_cred), admin.project_id, "admin"),
        (ks.app_credential_token(*member_cred), demo["id"], "member"),
    ]
    for token, project_id, role in checks:
        if token.project_id != project_id or role not in token.roles:
            raise KeystoneError(f"token of user {token.user_id}: project {token.project_id}, roles {token.roles}; "
                                f"expected project {project_id} with role {role}")
    fresh = ks.password_token("admin", args.admin_password, project_name="admin")
    for interface in ("public", "internal", "admin"):
        if fresh.endpoint("network", interface, args.region) != args.network_url:
            raise KeystoneError(f"the catalog has no {interface} network endpoint {args.network_url}")

    clouds = os.path.join(args.state, "clouds.yaml")
    common = {"region_name": args.region, "interface": "public", "identity_api_version": 3}

    def password_cloud(username, password, project):
        return {"auth_type": "password", "auth": {
            "auth_url": args.url, "username": username, "password": password, "project_name": project,
            "user_domain_name": "Default", "project_domain_name": "Default"}, **common}

    def appcred_cloud(cred):
        return {"auth_type": "v3applicationcredential", "auth": {
            "auth_url": args.url, "application_credential_id": cred[0],
            "application_credential_secret": cred[1]}, **common}

    doc = {"clouds": {
        "oslo-admin": password_cloud("admin", args.admin_password, "admin"),
        "oslo-member": password_cloud("demo-member", member_password, "demo"),
        "oslo-appcred": appcred_cloud(admin_cred),
        "oslo-member-appcred": appcred_cloud(member_cred),
    }}
    fd = os.open(clouds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# Written by oslo-nautobot tests/keystone/up.sh: test-only credentials.\n")
        # JSON is YAML: no YAML library needed.
        json.dump(doc, f, indent=2)
        f.write("\n")

    out = {
        "KEYSTONE_URL": args.url,
        "OS_AUTH_URL": args.url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": "admin",
        "OS_PASSWORD": args.admin_password,
        "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": args.region,
        "OS_INTERFACE": "public",
        "KEYSTONE_ADMIN_USER_ID": admin.user_id,
        "KEYSTONE_ADMIN_PROJECT_ID": admin.project_id,
        "KEYSTONE_SERVICE_PROJECT": "service",
        "KEYSTONE_SERVICE_PROJECT_ID": service["id"],
        "KEYSTONE_NEUTRON_USER": "neutron",
        "KEYSTONE_NEUTRON_PASSWORD": neutron_password,
        "KEYSTONE_DEMO_PROJECT": "demo",
        "KEYSTONE_DEMO_PROJECT_ID": demo["id"],
        "KEYSTONE_MEMBER_USER": "demo-member",
        "KEYSTONE_MEMBER_PASSWORD": member_password,
        "KEYSTONE_READER_USER": "demo-reader",
        "KEYSTONE_READER_PASSWORD": reader_password,
        "KEYSTONE_APP_CRED_ID": admin_cred[0],
        "KEYSTONE_APP_CRED_SECRET": admin_cred[1],
        "KEYSTONE_MEMBER_APP_CRED_ID": member_cred[0],
        "KEYSTONE_MEMBER_APP_CRED_SECRET": member_cred[1],
        "KEYSTONE_CLOUDS_YAML": clouds,
    }
    for k, v in out.items():
        # Ids, hex secrets, names and URLs: nothing the shell would split.
        if not v or any(c in v for c in " \t\n'\"$`\\;&|<>()*?[]#~"):
            raise KeystoneError(f"{k}: a value the export lines cannot carry: {v!r}")
        print(f"{k}={v}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeystoneError as e:
        print(f"provision.py: {e}", file=sys.stderr)
        sys.exit(1)
