"""Values as users pass them: metric values, parameter values, names, steps, times, namespaces.

(The argument orders of the reference library's generations are read in ``calls``.)
"""

from __future__ import annotations

import difflib
import json
import numbers
import re
import sys
from datetime import datetime
from typing import Any

from .exceptions import InvalidValueError
from .redact import redact_value

__all__ = ["check_name", "is_tensor", "metric_value", "param_value", "check_step", "check_timestamp", "INT64",
           "DEFAULT_NAMESPACE", "looks_like_namespace", "check_namespace", "check_country"]


def is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def metric_value(value: Any, name: str) -> Any:
    """A float; a tensor on an accelerator stays a detached tensor (converted later, in a batch).

    A CPU tensor is converted at once (``.item()`` costs less than deferring
    it); a tensor that is not one real number (several elements, meta,
    sparse, nested, complex) is refused here, at the call.
    """
    if is_tensor(value):
        return _tensor_value(value, name)
    if isinstance(value, (str, bytes)):
        raise InvalidValueError(
            f"metric {name!r} got the string {value!r}; metric values must be numbers "
            "(record text with log_param)"
        )
    try:
        if isinstance(value, numbers.Real):  # bool, int, float, NumPy scalars, Fraction, Decimal-like
            return float(value)
        item = getattr(value, "item", None)  # one-element NumPy arrays
        if callable(item) and getattr(value, "size", None) == 1 and getattr(getattr(value, "dtype", None), "kind", "f") in "biuf":
            return float(item())
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidValueError(f"metric {name!r} got {value!r}, which is not a float64 ({exc}); log a smaller number") from None
    raise InvalidValueError(
        f"metric {name!r} got {_short(value)} of type {type(value).__name__}; pass a number, "
        "a NumPy scalar or a one-element torch tensor"
    )


def evaluate(value: Any, name: str) -> Any:
    """A lazy metric value's result (anything else as it is); its failure is the caller's bad input."""
    if not callable(value) or is_tensor(value):
        return value
    try:
        return value()
    except Exception as exc:
        raise InvalidValueError(f"the callable given for metric {name!r} raised {type(exc).__name__}: {exc}") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _tensor_value(value: Any, name: str) -> Any:
    if value.is_cpu and not value.is_sparse:  # the common case, checked by item() itself; no host-device sync
        try:
            return float(value.item())
        except (RuntimeError, TypeError, ValueError, OverflowError):
            pass  # the detailed checks below say what is wrong
    torch = sys.modules["torch"]
    problem = None
    if value.is_nested:
        problem = "a nested tensor"
    elif value.layout is not torch.strided:
        problem = f"a {value.layout} tensor"
    elif value.is_meta:
        problem = "a meta tensor (it has no data)"
    elif value.numel() != 1:
        problem = f"a tensor of shape {tuple(value.shape)}"
    elif value.is_complex():
        problem = "a complex tensor"
    if problem is not None:
        raise InvalidValueError(
            f"metric {name!r} got {problem}; log one real number, e.g. loss.mean().detach() or tensor[0]"
        )
    if value.device.type == "cpu":
        try:
            return float(value.item())
        except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidValueError(f"metric {name!r}: the tensor could not become one float ({exc})") from None
    return value.detach()


def param_value(value: Any) -> Any:
    """Parameters stay typed when scalar; containers are recorded as JSON text; secrets in text are redacted."""
    value = _typed_param(value)
    return redact_value(value) if isinstance(value, str) else value


def _plain(value: Any) -> Any:
    """The value as its plain type: a subclass (an IntEnum, a str Enum) is the user's class, which records never hold."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # the text itself, not the subclass's str() ("Color.RED")
    return int(value) if isinstance(value, int) else float(value)


def _typed_param(value: Any) -> Any:
    if is_tensor(value):
        if not value.is_nested and value.layout is sys.modules["torch"].strided and not value.is_meta and value.numel() == 1:
            value = value.item()
        else:
            shape = "nested" if value.is_nested else tuple(value.shape)
            return f"tensor(shape={shape}, dtype={value.dtype}, device={value.device})"
    item = getattr(value, "item", None)
    if callable(item) and type(value) not in (int, float, bool, str) and getattr(value, "size", 1) == 1:  # NumPy scalars too
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, str) and value:
            check_name(value, "a parameter value", limit=1 << 20)
        return _plain(value)
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=repr)
    if not isinstance(value, (dict, list, tuple)):  # a Path, a device, a class: its text, not a quoted JSON string
        return str(value)
    try:
        return json.dumps(value, default=str, sort_keys=isinstance(value, dict))
    except (TypeError, ValueError):
        return str(value)


def check_name(name: Any, what: str, limit: int = 1000) -> str:
    """A name must be a non-empty string that files and JSON can hold."""
    if not isinstance(name, str) or not name:
        raise InvalidValueError(f"{what} must be a non-empty string, got {_short(name)}")
    if "\x00" in name:
        raise InvalidValueError(f"{what} {name[:40]!r} contains a NUL character; remove it")
    if len(name) > limit:
        raise InvalidValueError(f"{what} is {len(name)} characters long; use at most {limit}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(f"{what} {name[:40]!r} is not valid Unicode (a lone surrogate); fix the string") from None
    return name


INT64 = 1 << 63
_TIME_RANGE = (-62135596800.0, 253402300799.0)  # years 1 to 9999: what a datetime holds

def check_step(step: Any) -> int:
    """An int64 step from an int, a NumPy integer or a 0-d integer tensor."""
    if not (isinstance(step, int) and not isinstance(step, bool)):
        item = getattr(step, "item", None)
        value = None
        if callable(item) and getattr(step, "dtype", None) is not None:
            try:
                value = item()
            except (TypeError, ValueError, RuntimeError):
                value = None
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValueError(f"step must be an integer, got {_short(step)} ({type(step).__name__})")
        step = value
    if not -INT64 <= step < INT64:
        raise InvalidValueError(f"step {step} does not fit in 64 bits; use a step between -2**63 and 2**63 - 1")
    return step


def check_timestamp(value: Any) -> float:
    """Unix seconds from a user timestamp: milliseconds (as the reference), seconds or a datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = value / 1000.0 if value > 1e11 or value < -1e11 else float(value)
        except OverflowError:
            seconds = float("inf")
        if _TIME_RANGE[0] <= seconds <= _TIME_RANGE[1]:  # also refuses NaN
            return seconds
        raise InvalidValueError(
            f"timestamp {value!r} is not a time between the years 1 and 9999; pass Unix time "
            "in milliseconds (int), in seconds (float) or a datetime"
        )
    raise InvalidValueError(f"timestamp must be Unix time in milliseconds (int) or a datetime, got {_short(value)}")


#: The namespace of a run started without one (the reference library's examples use it too).
DEFAULT_NAMESPACE = "www.example.org"

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"{}|\\^`]+$")
_URN = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[^\s<>\"{}|\\^`]+$")
# a host name (one label or more), an optional port, an optional path
_HOST = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*"
                   r"(?::[0-9]{1,5})?(?:/[^\s<>\"{}|\\^`]*)?$")
_DOTTED_HOST = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+(?::[0-9]{1,5})?(?:/\S*)?$")

# ISO 3166-1 alpha-3, the codes codecarbon's country_iso_code takes
_COUNTRIES = frozenset("""
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD
    BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR
    COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH
    ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL
    GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR
    JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR
    MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL
    NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY
    PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP
    SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA
    UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE
""".split())


def looks_like_namespace(value: Any) -> bool:
    """An IRI (``https://example.org/ml``, ``urn:x:y``) or a dotted host name (``www.example.org``)."""
    return isinstance(value, str) and bool(_IRI.match(value) or _URN.match(value) or _DOTTED_HOST.match(value))


def check_namespace(value: Any) -> str:
    """The namespace, if an IRI or a host name can be made of it (PROV-XML and RDF need one)."""
    if isinstance(value, str) and (_IRI.match(value) or _URN.match(value) or _HOST.match(value)):
        return value
    hint = ""
    if isinstance(value, str) and value.strip():
        hint = (f"; if {value!r} is the experiment's name, pass it by name: "
                f"start_run(experiment_name={value!r}, prov_user_namespace='www.example.org')")
    raise InvalidValueError(
        f"prov_user_namespace {value!r} is not a namespace: use a host name such as 'www.example.org' or an IRI "
        f"such as 'https://example.org/ml' (no spaces){hint}"
    )


def check_country(value: Any) -> str:
    """An ISO 3166-1 alpha-3 code (upper-cased), for carbon_country."""
    code = value.upper() if isinstance(value, str) else value
    if code in _COUNTRIES:
        return code
    close = difflib.get_close_matches(code, sorted(_COUNTRIES), n=3) if isinstance(code, str) else []
    raise InvalidValueError(
        f"carbon_country {value!r} is not an ISO 3166-1 alpha-3 country code; use e.g. 'USA', 'FRA', 'DEU', 'ITA'"
        + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")
    )
