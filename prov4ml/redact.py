"""Secrets never reach a run's files: redaction by name and by value.

A value is redacted when its *name* looks secret (``SECRET_NAMES``, matched
as parts of the name, any case: ``DB_PASS``, ``GITHUB_PAT``, ``MYSQL_PWD``),
or when the *value* looks secret whatever its name: credentials in a URL
(``https://user:pass@host``, and ``https://TOKEN@host``), ``password=``/``pwd=``/``token=``/
``AccountKey=``-style pairs (connection strings, ``--password=x`` inside
another variable), bearer tokens, JWT-shaped values, private-key blocks and
well-known token prefixes (``sk-``, ``ghp_``/``github_pat_``, ``glpat-``,
``hf_``, ``npm_``, ``pypi-``, ``sk_live_``, ``xox?-``, ``AKIA``), and
Slack/Discord webhook URLs. Never by entropy or by a hex shape: sha256
digests, git commits and run ids stay intact. Command lines get the same treatment per option:
``--api-key sk-…`` and ``--password=hunter2`` keep the option name only.
"""

from __future__ import annotations

import re
import shlex
from typing import Dict, List, Mapping

__all__ = ["REDACTED", "SECRET_NAMES", "is_secret_name", "redact_value", "redact_env", "redact_command",
           "redact_command_line"]

REDACTED = "<redacted>"

#: name parts that mark a secret (a name is split on _ - . and case changes)
SECRET_NAMES = (
    "token", "secret", "password", "passwd", "pass", "pwd", "passphrase", "key", "apikey", "credential",
    "credentials", "creds", "cred", "auth", "authorization", "private", "session", "cookie", "jwt", "pat",
    "signature", "sig", "webhook", "dsn", "bearer", "otp", "salt", "cert", "certificate",
)
_SECRET_SUFFIXES = ("key", "token", "secret", "password", "passwd", "pwd", "pass", "cred", "creds")
_NAME_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])")

# user:password@ up to the @ that a host follows: a password may hold / and @ (postgres://u:p@ss@db)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]*:\S*?@(?=[A-Za-z0-9._\[\]-]+(?:[:/?#\s'\"]|$))"
)
# a bare user part of a web URL is a token (https://ghp_…@github.com); ssh's git@ is a user name and stays
_URL_TOKEN = re.compile(r"(?P<scheme>(?i:https?|ftps?|wss?)://)[^/@\s:]+@")
# a key that ends with a secret word (db_password=, "api_key": , access_token:), not one that holds it (max_tokens=)
_PAIRS = re.compile(
    r"(?i)(?P<key>\b[\w-]*(?:password|passwd|pwd|pass|secret|token|apikey|api[_-]?key|accountkey|sharedaccesskey"
    r"|access[_-]?key|(?:secret|private|ssh|encryption|signing|master)[_-]?key|auth|credentials?|sig|signature"
    r"|client[_-]?secret)(?P<kq>['\"])?\s*[=:]\s*)"
    # a quoted value whole; after a quoted key (JSON) a bare value ends at , or }; else at ; & space or a quote
    r"(?P<q>['\"])?(?P<val>(?(q)[^'\"]+|(?(kq)[^,}\s]+|[^;&\s'\"]+)))"
)
_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(?<=authorization:)\s*basic\s+[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # a JWT
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{16,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{16,}"),  # GitLab
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face
    re.compile(r"\bnpm_[A-Za-z0-9]{30,}"),
    re.compile(r"\bpypi-[A-Za-z0-9_-]{40,}"),
    re.compile(r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}"),  # Stripe
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"https://(?:hooks\.slack\.com/services|discord(?:app)?\.com/api/webhooks)/\S+"),
)


def is_secret_name(name: str) -> bool:
    parts = [p.lower() for p in _NAME_SPLIT.split(name) if p]
    if any(p in SECRET_NAMES for p in parts):
        return True
    joined = "".join(parts)
    return any(joined.endswith(s) for s in _SECRET_SUFFIXES) or any(
        m in joined for m in ("password", "passwd", "secret", "token", "apikey", "credential", "privatekey")
    )


def redact_value(value: str) -> str:
    """``value`` with every secret-looking part replaced by ``<redacted>``."""
    value = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)
    value = _URL_TOKEN.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)
    value = _PAIRS.sub(_redact_pair, value)
    for pattern in _PATTERNS:
        value = pattern.sub(REDACTED, value)
    return value


def _redact_pair(m: "re.Match[str]") -> str:
    if m.group("kq") and not m.group("q"):  # a bare JSON value: the text stays JSON
        return f'{m.group("key")}"{REDACTED}"'
    return f"{m.group('key')}{m.group('q') or ''}{REDACTED}"


def redact_env(environ: Mapping[str, str]) -> Dict[str, str]:
    """A copy of ``environ``: secret names redacted whole, other values redacted in part."""
    return {name: REDACTED if is_secret_name(name) else redact_value(value) for name, value in environ.items()}


def redact_command(argv: List[str]) -> List[str]:
    """A command line with the values of secret-looking options (and secret-looking values) redacted."""
    out: List[str] = []
    hide_next = False
    for arg in argv:
        if hide_next and not arg.startswith("--"):  # a secret may start with "-"; the next option starts with "--"
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        if arg.startswith("-"):
            name, eq, _ = arg.lstrip("-").partition("=")
            if is_secret_name(name):
                if eq:
                    out.append(arg.split("=", 1)[0] + "=" + REDACTED)
                else:
                    out.append(arg)
                    hide_next = True
                continue
        out.append(redact_value(arg))
    return out


def redact_command_line(text: str) -> str:
    """A command line given as one string, redacted as :func:`redact_command` does its words."""
    text = str(text)  # shlex.split(None) would read standard input
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: not a shell line, redact it as text
        return redact_value(text)
    redacted = redact_command(words)
    return text if redacted == words else shlex.join(redacted)  # the user's own quoting when nothing is secret
