"""Checks of start_run's values that would otherwise fail long after start_run returned."""

from __future__ import annotations

import difflib
import re
from typing import Any

from .exceptions import InvalidValueError

__all__ = ["DEFAULT_NAMESPACE", "looks_like_namespace", "check_namespace", "check_country"]

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
