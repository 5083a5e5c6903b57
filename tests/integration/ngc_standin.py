"""A local stand-in of NGC's model registry, for the real ngcsdk client (tltpipe's NGC downloads).

It serves the calls ngcsdk 4.x makes to look a model version up and download it, as a guest or with a key:
- API host (NGC_CLI_API_URL): the model, its versions, a version, its file list (path, size, sha256) and the
  download links; guest paths `/v2/models/ORG/TEAM/NAME...`, keyed paths `/v2/org/ORG/team/TEAM/models/NAME...`,
  `/v2/orgs` and `/v2/org/ORG/teams`;
- auth host (NGC_CLI_AUTH_URL): `/token` (a key exchanged for a bearer token);
- file host: the download links point at `/files/...` on the same server and honour Range.
ngcsdk speaks HTTPS only, so the server has a throw-away self-signed certificate; REQUESTS_CA_BUNDLE names it.

Switches, for the failure tests: require_key (guests get 401), corrupt (same length, other bytes), short (half the
bytes), and `requests` lists what was asked.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

KEY = "tltpipe-test-ngc-key"


def _page(items: list) -> dict:
    return {"index": 0, "size": len(items), "totalResults": len(items), "totalPages": 1}


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())  # strict verifiers want both identifiers
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(ski, False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class StandIn:
    """models: {"org/team/name": {version: {path: bytes}}}."""

    def __init__(self, models: dict[str, dict[str, dict[str, bytes]]], folder: Path):
        self.models = models
        self.require_key = self.corrupt = self.short = False
        self.requests: list[str] = []
        self.tokens: set[str] = set()
        self.ca_file, key_file = certificate(folder)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def env(self) -> dict[str, str]:
        """What points ngcsdk (and so tltpipe) at this server."""
        return {"NGC_CLI_API_URL": self.url, "NGC_CLI_AUTH_URL": self.url, "REQUESTS_CA_BUNDLE": str(self.ca_file)}

    def __enter__(self) -> "StandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def downloads(self) -> list[str]:
        return [r for r in self.requests if r.startswith("GET /files/")]


def _handler(st: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj: dict) -> None:
            self._send(code, json.dumps(obj).encode())

        def _error(self, code: int, text: str) -> None:
            self._json(code, {"requestStatus": {"statusCode": "ERROR", "statusDescription": text, "requestId": "1"}})

        def do_GET(self) -> None:  # noqa: N802
            self._route()

        def do_POST(self) -> None:  # noqa: N802
            self._route()

        def _route(self) -> None:
            parts = urlsplit(self.path)
            path, query = unquote(parts.path), parse_qs(parts.query)
            st.requests.append(f"{self.command} {path}")
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if path == "/token":
                return self._token()
            if path.startswith("/files/"):
                return self._file(path[len("/files/"):])
            auth = self.headers.get("Authorization", "")
            keyed = auth.startswith("Bearer ") and auth[7:] in st.tokens
            if auth and not keyed or st.require_key and not keyed:
                return self._error(401, "Authentication required")
            if path == "/v2/orgs":
                return self._json(200, {"organizations": [{"name": "nvidia"}], "paginationInfo": _page([1])})
            if re.fullmatch(r"/v2/org/[^/]+/teams", path):
                return self._json(200, {"teams": [{"name": "tao"}], "paginationInfo": _page([1])})
            match = (re.fullmatch(r"/v2/models/org/(?P<org>[^/]+)/team/(?P<team>[^/]+)/(?P<name>[^/]+)/(?P<links>[^/]+)/files",
                                  path)
                     or re.fullmatch(r"/v2/models/(?P<org>[^/]+)/(?P<team>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?", path)
                     or re.fullmatch(r"/v2/org/(?P<org>[^/]+)/team/(?P<team>[^/]+)/models/(?P<name>[^/]+)(?P<rest>/.*)?",
                                     path))
            if not match:
                return self._error(404, f"no route {path}")
            model = f"{match['org']}/{match['team']}/{match['name']}"
            versions = st.models.get(model)
            if versions is None:
                return self._error(404, f"Model '{model}' not found")
            rest = match.groupdict().get("rest") or ""
            links = match.groupdict().get("links")
            if links is None:
                keyed_links = re.fullmatch(r"/([^/]+)/files", rest)
                links = keyed_links[1] if keyed_links and not rest.startswith("/versions") else None
            if links is not None:
                return self._links(model, versions, links, query)
            return self._model(model, versions, rest)

        def _token(self) -> None:
            try:
                user, _, key = base64.b64decode(self.headers.get("Authorization", " ").split(" ", 1)[1]).decode().partition(":")
            except (ValueError, IndexError):
                user = key = ""
            if (user, key) != ("$oauthtoken", KEY):
                return self._send(401, b'{"error": "invalid credentials"}')
            token = f"token-{len(st.tokens)}"
            st.tokens.add(token)
            self._json(200, {"token": token, "expires_in": 3600})

        def _model(self, model: str, versions: dict, rest: str) -> None:
            org, team, name = model.split("/")
            about = {"name": name, "orgName": org, "teamName": team, "latestVersionIdStr": sorted(versions)[-1]}
            if rest == "":
                return self._json(200, {"model": about})
            if rest == "/versions":
                listed = [{"versionId": v, "status": "UPLOAD_COMPLETE"} for v in sorted(versions, reverse=True)]
                return self._json(200, {"modelVersions": listed, "paginationInfo": _page(listed)})
            match = re.fullmatch(r"/versions/([^/]+)(/files)?", rest)
            if not match or match[1] not in versions:
                return self._error(404, f"Version '{rest}' not found")
            files = versions[match[1]]
            if not match[2]:
                return self._json(200, {"model": about, "modelVersion": {
                    "versionId": match[1], "status": "UPLOAD_COMPLETE", "totalFileCount": len(files),
                    "totalSizeInBytes": sum(len(b) for b in files.values())}})
            listed = [{"path": p, "sizeInBytes": len(b), "sha256_base64": base64.b64encode(hashlib.sha256(b).digest()).decode()}
                      for p, b in sorted(files.items())]
            self._json(200, {"modelFiles": listed, "paginationInfo": _page(listed)})

        def _links(self, model: str, versions: dict, version: str, query: dict) -> None:
            if version not in versions:
                return self._error(404, f"Version '{version}' not found")
            paths = [p for p in (query.get("path") or sorted(versions[version])) if p in versions[version]]
            self._json(200, {"urls": [f"{st.url}/files/{model}/{version}/{p}" for p in paths], "filepath": paths,
                             "paginationInfo": _page(paths)})

        def _file(self, where: str) -> None:
            org, team, name, version, path = where.split("/", 4)
            data = st.models.get(f"{org}/{team}/{name}", {}).get(version, {}).get(path)
            if data is None:
                return self._send(404, b"NoSuchKey", "text/plain")
            if st.corrupt:
                data = bytes(b ^ 0xFF for b in data)
            span = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            code, headers = 200, {}
            if span:
                first, last = int(span[1]), int(span[2]) if span[2] else len(data) - 1
                headers = {"Content-Range": f"bytes {first}-{last}/{len(data)}"}
                data, code = data[first:last + 1], 206
            if st.short:
                data = data[:len(data) // 2]
            self._send(code, data, "application/octet-stream", headers)

    return Handler
