#!/usr/bin/env python3
"""api.auth — bearer tokens (HS256, RS256, ES256; everything else refused)
and per-user isolation (docs/api.md "Auth")."""

import base64
import hashlib
import os
import shutil
import tempfile
import time
import uuid

import apitest
from apitest import b64url, claims, hmac_signer, hs256_token, jwt_encode

PUBLIC_ROUTES = ["/healthz", "/readyz", "/metrics", "/openapi.json"]


class AuthMixin:
    def assert_refused(self, daemon, authorization, why):
        headers = {"Authorization": authorization} if authorization is not None else {}
        with self.subTest(why):
            r = daemon.request("GET", "/api/tasks", headers=headers)
            self.assert_problem(r, 401, "unauthorized")
            challenge = r.header("WWW-Authenticate") or ""
            self.assertTrue(challenge.startswith("Bearer"), f"WWW-Authenticate: {challenge!r}")
            if authorization and authorization.startswith("Bearer ") and len(authorization) > 7:
                self.assertIn('error="invalid_token"', challenge)

    def assert_accepted(self, daemon, token, why):
        with self.subTest(why):
            r = daemon.request("GET", "/api/tasks", headers={"Authorization": f"Bearer {token}"})
            self.assert_status(r, 200)


class SharedSecret(AuthMixin, apitest.ApiTestCase):
    def token(self, **kw):
        return hs256_token(self.daemon.secret, claims("alice", **kw))

    def test_refused(self):
        d = self.daemon
        now = int(time.time())
        secret = d.secret
        good = self.token()
        head, payload, sig = good.split(".")

        def signed(alg, sign):
            return jwt_encode({"alg": alg, "typ": "JWT"}, claims("alice"), sign)

        cases = [
            (None, "no Authorization header"),
            ("Basic YWxpY2U6cHc=", "not Bearer"),
            ("Bearer", "Bearer without a token"),
            ("Bearer ", "empty token"),
            ("Bearer abc.def", "two segments"),
            ("Bearer a.b.c", "garbage segments"),
            (f"Bearer {good}x", "signature altered"),
            (f"Bearer {head}.{b64url(b'{}')}.{sig}", "payload swapped"),
            (f"Bearer {self.token(lifetime=-120)}", "expired beyond the leeway"),
            (f"Bearer {self.token(nbf=now + 120)}", "nbf in the future"),
            (f"Bearer {self.token(exp=None)}", "no exp"),
            (f"Bearer {hs256_token('other-' + secret, claims('alice'))}", "another secret"),
            (f"Bearer {signed('none', lambda _: b'')}", "alg none"),
            (f"Bearer {signed('HS384', hmac_signer(secret, hashlib.sha384))}", "HS384"),
            (f"Bearer {signed('HS512', hmac_signer(secret, hashlib.sha512))}", "HS512"),
            (f"Bearer {signed('RS256', hmac_signer(secret))}",
             "RS256 header with an HMAC signature (no public key configured)"),
            (f"Bearer {hs256_token(secret, claims(None))}", "no sub"),
            (f"Bearer {hs256_token(secret, claims(''))}", "empty sub"),
            (f"Bearer {hs256_token(secret, claims('x' * 129))}", "sub of 129 characters"),
            (f"Bearer {hs256_token(secret, claims(12345))}", "sub not a string"),
            (f"bearer{good}", "no space"),
        ]
        for authorization, why in cases:
            self.assert_refused(d, authorization, why)

    def test_accepted(self):
        now = int(time.time())
        self.assert_accepted(self.daemon, self.token(), "valid")
        self.assert_accepted(self.daemon, self.token(lifetime=-10), "expired within the leeway")
        self.assert_accepted(self.daemon, self.token(nbf=now + 10), "nbf within the leeway")
        self.assert_accepted(self.daemon, hs256_token(self.daemon.secret, claims("x" * 128)),
                             "sub of 128 characters")

    def test_public_routes_need_no_token(self):
        for path in PUBLIC_ROUTES:
            with self.subTest(path=path):
                self.assert_status(self.daemon.request("GET", path), 200)


class SecretFileAndLeeway(AuthMixin, apitest.ApiTestCase):
    """TE_JWT_SECRET_FILE (trailing newline stripped) and TE_JWT_LEEWAY=0."""

    @classmethod
    def setUpClass(cls):
        fd, cls.secret_file = tempfile.mkstemp(prefix="te-api-secret-")
        cls.addClassCleanup(os.unlink, cls.secret_file)
        cls.file_secret = "file-" + uuid.uuid4().hex
        with os.fdopen(fd, "w") as f:
            f.write(cls.file_secret + "\n")
        cls.daemon_env = {"TE_JWT_SECRET": None, "TE_JWT_SECRET_FILE": cls.secret_file,
                          "TE_JWT_LEEWAY": "0"}
        super().setUpClass()

    def test_secret_file(self):
        d, secret = self.daemon, self.file_secret
        self.assert_accepted(d, hs256_token(secret, claims("carol")), "the file's secret")
        self.assert_refused(d, f"Bearer {hs256_token(secret + chr(10), claims('carol'))}",
                            "the secret with its newline")
        self.assert_refused(d, f"Bearer {hs256_token(secret, claims('carol', lifetime=-5))}",
                            "expired 5 s ago, no leeway")

    def test_secret_is_not_logged(self):
        self.assertNotIn(self.file_secret, self.daemon.log_text(max_lines=10**9))


class Isolation(apitest.ApiTestCase):
    def test_other_users_data_is_invisible(self):
        a, b = self.new_client(), self.new_client()
        due = apitest.from_now(days=2)
        t = self.create_task(a, title="A's secret", tags=["private-a"], due_date=due,
                             reminders=[{"offset_minutes": 5}])
        rid = t["reminders"][0]["id"]
        path = f"/api/tasks/{t['id']}"
        attempts = [("GET", path, None), ("PUT", path, {"title": "B"}),
                    ("PATCH", path, {"title": "B"}), ("DELETE", path, None),
                    ("POST", path + "/complete", None), ("POST", path + "/uncomplete", None),
                    ("PATCH", path + "/toggle", None), ("GET", path + "/reminders", None),
                    ("POST", path + "/reminders", {"offset_minutes": 30}),
                    ("DELETE", f"{path}/reminders/{rid}", None),
                    ("DELETE", "/api/tags/private-a", None)]
        for method, p, body in attempts:
            with self.subTest(method=method, path=p):
                self.assert_problem(b.request(method, p, body), 404, "not-found")
        listing = b.get("/api/tasks").json
        self.assertEqual((listing["items"], listing["total"]), ([], 0))
        self.assertEqual(b.get("/api/tasks?q=secret").json["items"], [])
        self.assertEqual(b.get("/api/tags").json["items"], [])
        self.assertEqual(b.get("/api/sync?since=0").json["changes"], [])
        self.assertEqual(b.get("/api/activity").json["items"], [])
        self.assertEqual(self.get_task(a, t["id"]), t, "B changed nothing")
        self.assertEqual([x["name"] for x in a.get("/api/tags").json["items"]], ["private-a"])


class PublicKeys(AuthMixin, apitest.ApiTestCase):
    """Daemons configured with an RSA and an EC public key (no shared secret)."""

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="te-api-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.rsa = apitest.OpenSSLKey("RSA", cls.keydir)
        cls.ec = apitest.OpenSSLKey("EC", cls.keydir)
        cls.other_rsa = apitest.OpenSSLKey("RSA", cls.keydir)
        cls.other_ec = apitest.OpenSSLKey("EC", cls.keydir)
        cls.daemon_env = {"TE_JWT_SECRET": None, "TE_JWT_PUBLIC_KEY_FILE": cls.rsa.public}
        super().setUpClass()
        cls.rsa_daemon = cls.daemon
        cls.ec_daemon = cls.start_daemon({"TE_JWT_SECRET": None,
                                          "TE_JWT_PUBLIC_KEY_FILE": cls.ec.public,
                                          "TE_JWT_ISSUER": "https://issuer.test",
                                          "TE_JWT_AUDIENCE": "todo-api"}, "PublicKeysEC")

    def test_rs256(self):
        d = self.rsa_daemon
        self.assert_accepted(d, self.rsa.token(claims("alice")), "RS256")
        self.assert_refused(d, f"Bearer {self.other_rsa.token(claims('alice'))}", "other RSA key")
        self.assert_refused(d, f"Bearer {self.ec.token(claims('alice'))}", "ES256 to an RSA daemon")
        self.assert_refused(d, f"Bearer {self.rsa.token(claims('alice', lifetime=-120))}",
                            "RS256 expired")
        pem = self.rsa.public_pem()
        for secret, why in ((pem, "HS256 with the PEM as secret"),
                            (pem.strip(), "HS256 with the PEM (stripped) as secret")):
            self.assert_refused(d, f"Bearer {hs256_token(secret, claims('alice'))}", why)
        self.assert_refused(d, f"Bearer {self.rsa.token(claims('alice'), alg='PS256')}", "PS256")

    def test_es256_with_issuer_and_audience(self):
        d = self.ec_daemon
        iss = {"iss": "https://issuer.test"}
        self.assert_accepted(d, self.ec.token(claims("bob", aud="todo-api", **iss)), "ES256")
        self.assert_accepted(d, self.ec.token(claims("bob", aud=["other", "todo-api"], **iss)),
                             "aud array containing ours")
        refused = [
            (self.other_ec.token(claims("bob", aud="todo-api", **iss)), "other EC key"),
            (self.ec.token(claims("bob", aud="todo-api")), "no iss"),
            (self.ec.token(claims("bob", aud="todo-api", iss="https://evil.test")), "wrong iss"),
            (self.ec.token(claims("bob", **iss)), "no aud"),
            (self.ec.token(claims("bob", aud="someone-else", **iss)), "wrong aud"),
            (self.rsa.token(claims("bob", aud="todo-api", **iss)), "RS256 to an EC daemon"),
            (hs256_token(self.ec.public_pem(), claims("bob", aud="todo-api", **iss)),
             "HS256 with the EC PEM as secret"),
        ]
        for token, why in refused:
            self.assert_refused(d, f"Bearer {token}", why)
        # A tampered signature (last byte of s flipped).
        good = self.ec.token(claims("bob", aud="todo-api", **iss))
        head, payload, sig = good.split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
        raw[-1] ^= 1
        self.assert_refused(d, f"Bearer {head}.{payload}.{b64url(bytes(raw))}", "ES256 tampered")

    def test_users_by_sub(self):
        d = self.rsa_daemon
        user = "u-" + uuid.uuid4().hex
        c = apitest.Client(d.port, user, self.rsa.token(claims(user)))
        t = self.create_task(c, title="signed")
        self.assertEqual(t["user_id"], user)


if __name__ == "__main__":
    apitest.main()
