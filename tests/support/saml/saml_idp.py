"""A small SAML 2.0 identity provider for end-to-end tests, built on pysaml2 (`saml2.server.Server`).

It signs with a key and self-signed certificate made at start in a temporary folder (nothing secret is
kept), serves its metadata, answers SP-initiated logins (AuthnRequest by HTTP-Redirect or HTTP-POST)
with an auto-submitting HTML form that POSTs a SAMLResponse to the SP's AssertionConsumerService, and
authenticates a test user chosen without any interaction. Usage and parameters: README.md beside it.

    saml_idp.py --port 0 --sp-entity-id http://127.0.0.1:8080/api/v1/auth/saml/metadata \
                --sp-acs-url http://127.0.0.1:8080/api/v1/auth/saml/acs

prints `ready http://127.0.0.1:PORT` on stdout once it listens.
"""

import argparse
import base64
import datetime
import html
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
import signal
import uuid
import warnings
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# pysaml2 imports cipher modes that newer `cryptography` releases deprecate; keep stderr for the IdP's own lines.
warnings.filterwarnings("ignore", module=r"saml2\.")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml  # noqa: E402
from saml2.attribute_converter import AttributeConverterNOOP  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import create_metadata_string  # noqa: E402
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

AUTHN_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"

# The built-in test users; --users FILE replaces them (a JSON object of the same shape).
DEFAULT_USERS = {
    "alice": {"email": "alice@example.com", "name": "Alice Example", "groups": ["admins", "developers"]},
    "bob": {"email": "bob@example.com", "name": "Bob Example", "groups": ["developers"]},
    "carol": {"email": "carol@example.com", "name": "Carol Example", "groups": []},
}

# The options a login takes, from the SSO request's query (or form) or from /control; see README.md.
FLAG_OPTIONS = ("unsigned", "tamper", "wrap", "sign_response", "sign_assertion")
VALUE_OPTIONS = ("user", "email", "name", "groups")


def log(message: str) -> None:
    print(f"saml_idp: {message}", file=sys.stderr, flush=True)


def make_key_and_cert(folder: str, common_name: str) -> tuple[str, str]:
    """Writes a fresh RSA key and a self-signed certificate for it; returns (key_path, cert_path)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path = os.path.join(folder, "idp.key")
    cert_path = os.path.join(folder, "idp.crt")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def sp_metadata_xml(entity_id: str, acs_urls: list[str]) -> str:
    """Minimal SP metadata: the SP's entity ID and its ACS endpoints (HTTP-POST binding)."""
    services = "".join(
        f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" '
        f'Location="{html.escape(url, quote=True)}" index="{i}"/>'
        for i, url in enumerate(acs_urls)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'entityID="{html.escape(entity_id, quote=True)}">'
        '<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"<md:NameIDFormat>{NAMEID_FORMAT_EMAILADDRESS}</md:NameIDFormat>"
        f"{services}"
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class Idp:
    """The pysaml2 server, the users and the options of the next logins."""

    def __init__(self, args, base_url: str, folder: str):
        self.base_url = base_url
        self.entity_id = args.entity_id or f"{base_url}/metadata"
        self.users = DEFAULT_USERS
        if args.users:
            with open(args.users) as f:
                self.users = json.load(f)
        self.default_user = args.default_user
        self.accept_any_sp = args.accept_any_sp
        self.sp_metadata_urls = list(args.sp_metadata_url or [])
        self.known_sps: set[str] = set()
        self.control: dict[str, str] = {}
        self.lock = threading.Lock()  # guards control and the SP metadata
        self.sso_lock = threading.Lock()  # one login at a time through pysaml2

        key_path, cert_path = make_key_and_cert(folder, urllib.parse.urlsplit(base_url).hostname or "idp")
        self.cert_path = cert_path
        xmlsec = args.xmlsec_binary or shutil.which("xmlsec1")
        if not xmlsec:
            raise SystemExit("saml_idp: xmlsec1 not found (apt-get install xmlsec1)")

        inline = []
        if args.sp_entity_id:
            if not args.sp_acs_url:
                raise SystemExit("saml_idp: --sp-entity-id needs at least one --sp-acs-url")
            inline.append(sp_metadata_xml(args.sp_entity_id, args.sp_acs_url))
            self.known_sps.add(args.sp_entity_id)
        metadata = {}
        if inline:
            metadata["inline"] = inline
        if args.sp_metadata_file:
            metadata["local"] = list(args.sp_metadata_file)

        conf = {
            "entityid": self.entity_id,
            "xmlsec_binary": xmlsec,
            "key_file": key_path,
            "cert_file": cert_path,
            "metadata": metadata,
            "accepted_time_diff": 60,
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "service": {
                "idp": {
                    "name": "LeanNodes test IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{base_url}/sso/redirect", BINDING_HTTP_REDIRECT),
                            (f"{base_url}/sso/post", BINDING_HTTP_POST),
                        ],
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "want_authn_requests_signed": False,
                    "sign_assertion": True,
                    "sign_response": True,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 15},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_BASIC,
                        },
                    },
                },
            },
        }
        config = IdPConfig()
        config.load(conf)
        self.server = Server(config=config)
        # No attribute-name conversion: `email`, `name` and `groups` go out under those names.
        self.server.config.attribute_converters = [AttributeConverterNOOP(NAME_FORMAT_BASIC)]
        self.metadata_xml = create_metadata_string(None, config=config, valid=24 * 30).decode("utf-8")
        for entity_id in self.server.metadata.keys():
            self.known_sps.add(entity_id)

    # -- SP trust ---------------------------------------------------------------------------

    def ensure_sp_known(self, sp_entity_id: str | None, acs_url: str | None) -> None:
        """Loads SP metadata that was not there at start: from --sp-metadata-url, or (with
        --accept-any-sp) built from the AuthnRequest's own issuer and ACS URL."""
        with self.lock:
            if sp_entity_id in self.known_sps:
                return
            for url in self.sp_metadata_urls:
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        xml = resp.read().decode("utf-8")
                except OSError as exc:
                    log(f"fetching SP metadata {url} failed: {exc}")
                    continue
                self.server.metadata.load("inline", xml)
                self.known_sps.update(self.server.metadata.keys())
                log(f"loaded SP metadata from {url}")
            if sp_entity_id not in self.known_sps and self.accept_any_sp and sp_entity_id and acs_url:
                self.server.metadata.load("inline", sp_metadata_xml(sp_entity_id, [acs_url]))
                self.known_sps.add(sp_entity_id)
                log(f"trusting SP {sp_entity_id} (ACS {acs_url}) on first use")

    # -- the login ----------------------------------------------------------------------------

    def options(self, request_params: dict[str, str]) -> dict[str, str]:
        with self.lock:
            merged = dict(self.control)
        merged.update({k: v for k, v in request_params.items() if k in FLAG_OPTIONS + VALUE_OPTIONS})
        return merged

    def identity(self, opts: dict[str, str]) -> dict:
        name = opts.get("user") or self.default_user
        if name not in self.users:
            raise LookupError(f"unknown test user {name!r} (known: {', '.join(sorted(self.users))})")
        user = dict(self.users[name])
        if "email" in opts:
            user["email"] = opts["email"]
        if "name" in opts:
            user["name"] = opts["name"]
        if "groups" in opts:
            user["groups"] = [g for g in opts["groups"].split(",") if g]
        return user

    def sso(self, saml_request: str, relay_state: str, binding: str, params: dict[str, str]):
        """Returns (status, content_type, body) for one AuthnRequest."""
        with self.sso_lock:
            return self._sso(saml_request, relay_state, binding, params)

    def _sso(self, saml_request: str, relay_state: str, binding: str, params: dict[str, str]):
        # Peek at the request for its issuer and ACS URL, so that an SP not yet known can be loaded.
        try:
            xml = decode_request(saml_request, binding)
            issuer, acs_url = request_issuer_and_acs(xml)
        except Exception as exc:  # noqa: BLE001 - an unreadable request is the caller's error
            return 400, "text/plain", f"unreadable SAMLRequest: {exc}\n"
        self.ensure_sp_known(issuer, acs_url)

        try:
            req = self.server.parse_authn_request(saml_request, binding)
            resp_args = self.server.response_args(req.message, [BINDING_HTTP_POST])
        except Exception as exc:  # noqa: BLE001
            log(f"refused AuthnRequest from {issuer}: {exc!r}")
            return 400, "text/plain", f"AuthnRequest refused: {exc!r}\n"

        opts = self.options(params)
        try:
            user = self.identity(opts)
        except LookupError as exc:
            return 400, "text/plain", f"{exc}\n"

        unsigned = truthy(opts.get("unsigned", "0"))
        tamper = truthy(opts.get("tamper", "0"))
        wrap = truthy(opts.get("wrap", "0"))
        sign_assertion = not unsigned and truthy(opts.get("sign_assertion", "1"))
        sign_response = not unsigned and truthy(opts.get("sign_response", "1"))
        if wrap:
            # The wrapping attack needs the genuine assertion to be the only signed part.
            sign_assertion, sign_response = True, False

        ava = {"email": [user["email"]], "name": [user["name"]]}
        if user.get("groups"):
            ava["groups"] = list(user["groups"])
        name_id = saml.NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=user["email"])

        destination = resp_args["destination"]
        response = self.server.create_authn_response(
            ava,
            in_response_to=resp_args["in_response_to"],
            destination=destination,
            sp_entity_id=resp_args["sp_entity_id"],
            name_id=name_id,
            authn={"class_ref": AUTHN_PASSWORD, "authn_auth": self.entity_id},
            sign_assertion=sign_assertion,
            sign_response=sign_response,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        response_xml = str(response)
        if tamper:
            response_xml = tamper_assertion(response_xml)
        if wrap:
            response_xml = wrap_assertion(response_xml)

        variant = "unsigned" if unsigned else "tampered" if tamper else "wrapped" if wrap else "signed"
        log(
            f"login user={user['email']} sp={resp_args['sp_entity_id']} "
            f"in_response_to={resp_args['in_response_to']} acs={destination} variant={variant} "
            f"sign_assertion={sign_assertion} sign_response={sign_response}"
        )
        encoded = base64.b64encode(response_xml.encode("utf-8")).decode("ascii")
        return 200, "text/html; charset=utf-8", post_form(destination, encoded, relay_state)


def decode_request(saml_request: str, binding: str) -> str:
    raw = base64.b64decode(saml_request)
    if binding == BINDING_HTTP_REDIRECT:
        try:
            return zlib.decompress(raw, -15).decode("utf-8")
        except zlib.error:
            pass
    return raw.decode("utf-8")


def request_issuer_and_acs(xml: str) -> tuple[str | None, str | None]:
    issuer = re.search(r"<(?:\w+:)?Issuer\b[^>]*>\s*([^<]+?)\s*</(?:\w+:)?Issuer>", xml)
    acs = re.search(r"\bAssertionConsumerServiceURL=\"([^\"]*)\"", xml)
    return (html.unescape(issuer.group(1)) if issuer else None, html.unescape(acs.group(1)) if acs else None)


ASSERTION_RE = re.compile(r"<(?P<p>\w+:)?Assertion\b.*?</(?P=p)Assertion>", re.S)


def tamper_assertion(response_xml: str) -> str:
    """Changes the `name` attribute's value inside the already-signed assertion."""
    tampered, count = re.subn(
        r"(<(?P<p>\w+:)?Attribute\b[^>]*\bName=\"name\"[^>]*>\s*<(?P<v>\w+:)?AttributeValue\b[^>]*>)[^<]*(</)",
        r"\1Tampered Name\4",
        response_xml,
        count=1,
    )
    if count != 1:
        raise RuntimeError("tamper: no `name` attribute value found")
    return tampered


def wrap_assertion(response_xml: str) -> str:
    """XML signature wrapping: an unsigned forged copy of the assertion (another ID, NameID and email
    evil@example.com, groups = admins) is put before the genuine signed one, so that an SP that checks
    "a signature is valid" but reads the first assertion would log the forger in."""
    m = ASSERTION_RE.search(response_xml)
    if not m:
        raise RuntimeError("wrap: no assertion found")
    genuine = m.group(0)
    forged = re.sub(r"<(?P<p>\w+:)?Signature\b.*?</(?P=p)Signature>", "", genuine, count=1, flags=re.S)
    forged = re.sub(r'\bID="[^"]*"', f'ID="_forged{uuid.uuid4().hex}"', forged, count=1)
    forged = re.sub(r">[^<>]+@[^<>]+<", ">evil@example.com<", forged)

    def only_admins(attr: re.Match) -> str:
        first = re.search(r"(<(\w+:)?AttributeValue\b[^>]*>)[^<]*(</(\w+:)?AttributeValue>)", attr.group("inner"))
        inner = f"{first.group(1)}admins{first.group(3)}" if first else attr.group("inner")
        return attr.group("open") + inner + attr.group("close")

    forged = re.sub(
        r"(?P<open><(?P<p>\w+:)?Attribute\b[^>]*\bName=\"groups\"[^>]*>)(?P<inner>.*?)(?P<close></(?P=p)Attribute>)",
        only_admins,
        forged,
        count=1,
        flags=re.S,
    )
    return response_xml[: m.start()] + forged + genuine + response_xml[m.end() :]


def post_form(action: str, saml_response: str, relay_state: str) -> str:
    relay = (
        f'<input type="hidden" name="RelayState" value="{html.escape(relay_state, quote=True)}"/>'
        if relay_state
        else ""
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>SAML login</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(action, quote=True)}">'
        f'<input type="hidden" name="SAMLResponse" value="{saml_response}"/>'
        f"{relay}"
        '<noscript><input type="submit" value="Continue"/></noscript>'
        "</form></body></html>\n"
    )


def make_handler(idp: Idp):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet; logins are logged by Idp.sso
            pass

        def answer(self, status: int, content_type: str, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def params(self) -> tuple[str, dict[str, str]]:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            if self.command == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                query.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
            return url.path, query

        def route(self) -> None:
            path, q = self.params()
            if path == "/metadata" and self.command == "GET":
                return self.answer(200, "application/samlmetadata+xml", idp.metadata_xml)
            if path == "/cert.pem" and self.command == "GET":
                with open(idp.cert_path) as f:
                    return self.answer(200, "application/x-pem-file", f.read())
            if path == "/health":
                return self.answer(200, "text/plain", "ok\n")
            if path == "/control":
                with idp.lock:
                    idp.control = {k: v for k, v in q.items() if k in FLAG_OPTIONS + VALUE_OPTIONS}
                    current = dict(idp.control)
                return self.answer(200, "application/json", json.dumps(current) + "\n")
            if path in ("/sso/redirect", "/sso/post"):
                if "SAMLRequest" not in q:
                    return self.answer(400, "text/plain", "missing SAMLRequest\n")
                binding = BINDING_HTTP_REDIRECT if self.command == "GET" else BINDING_HTTP_POST
                try:
                    status, ctype, body = idp.sso(q["SAMLRequest"], q.get("RelayState", ""), binding, q)
                except Exception as exc:  # noqa: BLE001 - answer, so that the test sees why
                    log(f"login failed: {exc!r}")
                    status, ctype, body = 500, "text/plain", f"IdP error: {exc!r}\n"
                return self.answer(status, ctype, body)
            return self.answer(404, "text/plain", "not found\n")

        def do_GET(self):  # noqa: N802
            self.route()

        def do_POST(self):  # noqa: N802
            self.route()

    return Handler


def on_sigterm(signum, frame) -> None:
    # SIGTERM ends the server like Ctrl-C, so that the temporary key folder is removed.
    raise KeyboardInterrupt


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="SAML 2.0 test IdP (pysaml2)")
    parser.add_argument("--host", default=env("SAML_IDP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SAML_IDP_PORT", "0")), help="0 picks a free port")
    parser.add_argument("--entity-id", default=env("SAML_IDP_ENTITY_ID"), help="default http://HOST:PORT/metadata")
    parser.add_argument("--sp-entity-id", default=env("SAML_SP_ENTITY_ID"))
    parser.add_argument(
        "--sp-acs-url", action="append", default=[u for u in [env("SAML_SP_ACS_URL")] if u], help="repeatable"
    )
    parser.add_argument("--sp-metadata-url", action="append", help="fetched when an unknown SP first logs in")
    parser.add_argument("--sp-metadata-file", action="append", help="SP metadata XML file, read at start")
    parser.add_argument(
        "--accept-any-sp",
        action="store_true",
        default=truthy(env("SAML_IDP_ACCEPT_ANY_SP", "0")),
        help="trust an unknown SP's AuthnRequest issuer and ACS URL on first use",
    )
    parser.add_argument("--default-user", default=env("SAML_IDP_DEFAULT_USER", "alice"))
    parser.add_argument("--users", default=env("SAML_IDP_USERS"), help="JSON file of users replacing the built-in ones")
    parser.add_argument("--xmlsec-binary", default=env("SAML_IDP_XMLSEC1"))
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, on_sigterm)
    httpd = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    base_url = f"http://{args.host}:{port}"
    with tempfile.TemporaryDirectory(prefix="saml_idp.") as folder:
        idp = Idp(args, base_url, folder)
        httpd.RequestHandlerClass = make_handler(idp)
        log(f"entity id {idp.entity_id}; trusted SPs: {', '.join(sorted(idp.known_sps)) or '(none yet)'}")
        print(f"ready {base_url}", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            httpd.server_close()


if __name__ == "__main__":
    main()
