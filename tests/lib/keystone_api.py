#!/usr/bin/env python3
"""A small client of Keystone's identity API v3 for the test scripts.

Standard library only: tests/keystone/up.sh, tests/neutron/up.sh and
tests/neutron/neutron_e2e.py use it from whichever Python runs them.

As a module:

    ks = Keystone("http://127.0.0.1:PORT/v3")
    t = ks.password_token("admin", password, project_name="admin")
    t.id, t.user_id, t.project_id, t.endpoint("network", "public")
    ks.call(t, "GET", "/projects")   # → (status, parsed body)

As a command (credentials from the environment, as an OpenStack client
reads them: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME):

    keystone_api.py token                  # prints a project-scoped token id
    keystone_api.py set-endpoints TYPE NAME URL
        # the service of type TYPE (made, named NAME, if missing) gets
        # exactly one public, one internal and one admin endpoint in
        # OS_REGION_NAME, each with URL (endpoints updated in place)
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

INTERFACES = ("public", "internal", "admin")


class KeystoneError(RuntimeError):
    pass


class Token:
    def __init__(self, id_, body):
        self.id = id_
        self.body = body.get("token", {})
        self.user_id = self.body.get("user", {}).get("id")
        self.project_id = (self.body.get("project") or {}).get("id")
        self.roles = sorted(r["name"] for r in self.body.get("roles", []))

    def endpoint(self, service_type, interface, region=None):
        """The URL of the catalog's endpoint for that service type and
        interface (and region), or None. Picked by interface: Keystone
        lists a service's endpoints in no fixed order."""
        for service in self.body.get("catalog", []):
            if service.get("type") != service_type:
                continue
            for e in service.get("endpoints", []):
                if e.get("interface") == interface and region in (None, e.get("region_id"), e.get("region")):
                    return e.get("url")
        return None


class Keystone:
    def __init__(self, url, timeout=30):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def request(self, method, path, body=None, token=None):
        """(status, parsed body or None, response headers)."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["X-Auth-Token"] = token.id if isinstance(token, Token) else token
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, text, hdrs = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            status, text, hdrs = e.code, e.read(), e.headers
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return status, parsed, hdrs

    def call(self, token, method, path, body=None):
        status, parsed, _ = self.request(method, path, body, token)
        return status, parsed

    def must(self, token, method, path, body=None, ok=(200, 201, 204)):
        status, parsed = self.call(token, method, path, body)
        if status not in ok:
            raise KeystoneError(f"{method} {path}: {status} {parsed}")
        return parsed

    def _token(self, auth, what):
        status, body, hdrs = self.request("POST", "/auth/tokens", {"auth": auth})
        if status != 201 or not hdrs.get("X-Subject-Token"):
            raise KeystoneError(f"POST /auth/tokens ({what}): {status} {body}")
        return Token(hdrs["X-Subject-Token"], body)

    def password_token(self, user, password, project_name=None, project_id=None,
                       user_domain="Default", project_domain="Default"):
        """A token for a user by name, scoped to a project (by name or id;
        neither: unscoped)."""
        auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": user_domain}, "password": password}}}}
        if project_id:
            auth["scope"] = {"project": {"id": project_id}}
        elif project_name:
            auth["scope"] = {"project": {"name": project_name, "domain": {"name": project_domain}}}
        return self._token(auth, f"password, user {user}")

    def app_credential_token(self, cred_id, secret):
        """A token for an application credential: no scope (the credential
        fixes its own project; sending one is refused)."""
        auth = {"identity": {"methods": ["application_credential"],
                             "application_credential": {"id": cred_id, "secret": secret}}}
        return self._token(auth, f"application credential {cred_id}")

    # Idempotent helpers for provisioning --------------------------------------------

    def find(self, token, collection, key, **query):
        """The one object of the collection matching the query, or None."""
        qs = "&".join(f"{k}={urllib.parse.quote(str(v))}" for k, v in query.items())
        found = self.must(token, "GET", f"/{collection}?{qs}")[key]
        if len(found) > 1:
            raise KeystoneError(f"GET /{collection}?{qs}: {len(found)} matches")
        return found[0] if found else None

    def set_endpoints(self, token, service_type, name, url, region):
        """The service of that type (made if missing) with exactly one
        endpoint per interface in the region, each with this URL."""
        service = self.find(token, "services", "services", type=service_type)
        if service is None:
            service = self.must(token, "POST", "/services", {"service": {
                "type": service_type, "name": name, "enabled": True}})["service"]
        have = self.must(token, "GET", f"/endpoints?service_id={service['id']}")["endpoints"]
        for interface in INTERFACES:
            mine = [e for e in have if e["interface"] == interface and e.get("region_id") == region]
            for extra in mine[1:]:
                self.must(token, "DELETE", f"/endpoints/{extra['id']}")
            if not mine:
                self.must(token, "POST", "/endpoints", {"endpoint": {
                    "service_id": service["id"], "interface": interface, "region_id": region,
                    "url": url, "enabled": True}})
            elif mine[0]["url"] != url or not mine[0].get("enabled", True):
                self.must(token, "PATCH", f"/endpoints/{mine[0]['id']}",
                          {"endpoint": {"url": url, "enabled": True}})
        return service


def from_env():
    """(Keystone, a project-scoped token) from the OS_* variables."""
    env = os.environ
    ks = Keystone(env["OS_AUTH_URL"])
    token = ks.password_token(env["OS_USERNAME"], env["OS_PASSWORD"], project_name=env["OS_PROJECT_NAME"],
                              user_domain=env.get("OS_USER_DOMAIN_NAME", "Default"),
                              project_domain=env.get("OS_PROJECT_DOMAIN_NAME", "Default"))
    return ks, token


def main(argv):
    if argv[:1] == ["token"] and len(argv) == 1:
        _, token = from_env()
        print(token.id)
        return 0
    if argv[:1] == ["set-endpoints"] and len(argv) == 4:
        ks, token = from_env()
        _, service_type, name, url = argv
        ks.set_endpoints(token, service_type, name, url, os.environ.get("OS_REGION_NAME", "RegionOne"))
        # Read back through a new token's catalog, as a client finds it.
        _, check = from_env()
        wrong = [i for i in INTERFACES if check.endpoint(service_type, i, os.environ.get("OS_REGION_NAME"))
                 != url]
        if wrong:
            print(f"the catalog does not list {url} for {service_type} {', '.join(wrong)}", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (KeystoneError, KeyError, OSError) as e:
        print(f"keystone_api.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
