"""Query text as Immich prepares it before tokenising: cleaning and NLLB language prefixes.

Immich (machine-learning/immich_ml/models/transforms.py ``clean_text`` and clip/textual.py)
collapses whitespace on every query, additionally strips ``string.punctuation`` and lower-cases
when the model's ``text_cfg.tokenizer_kwargs.clean`` is ``"canonicalize"`` (SigLIP, SigLIP2),
and prefixes NLLB-CLIP queries with a FLORES-200 language code. Matching that exactly keeps the
token ids, and so the vectors, the ones the model was published with.

The language for NLLB models: ``$PHOTOSEARCH_LANGUAGE`` (also set by the CLI's ``--language``)
as a FLORES-200 code (``fra_Latn``) or a locale tag (``fr``, ``pt_BR``, ``zh-TW``); else the
user's locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``); else English (``eng_Latn``).
"""

from __future__ import annotations

import contextlib
import locale
import os
import re
import string

from photosearch.errors import PhotosearchError

LANGUAGE_ENV = "PHOTOSEARCH_LANGUAGE"
DEFAULT_FLORES = "eng_Latn"
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_FLORES_PATTERN = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")

# Locale language (or language-region/script) -> the FLORES-200 code NLLB's tokenizer carries.
# Where FLORES-200 names one variety of a macro-language, that variety is the usual one:
# Modern Standard Arabic, Western Persian, Standard Malay, Standard Latvian, Halh Mongolian.
FLORES_BY_LANGUAGE = {
    "af": "afr_Latn",
    "am": "amh_Ethi",
    "ar": "arb_Arab",
    "as": "asm_Beng",
    "az": "azj_Latn",
    "be": "bel_Cyrl",
    "bg": "bul_Cyrl",
    "bn": "ben_Beng",
    "bo": "bod_Tibt",
    "bs": "bos_Latn",
    "ca": "cat_Latn",
    "cs": "ces_Latn",
    "cy": "cym_Latn",
    "da": "dan_Latn",
    "de": "deu_Latn",
    "el": "ell_Grek",
    "en": "eng_Latn",
    "eo": "epo_Latn",
    "es": "spa_Latn",
    "et": "est_Latn",
    "eu": "eus_Latn",
    "fa": "pes_Arab",
    "fi": "fin_Latn",
    "fo": "fao_Latn",
    "fr": "fra_Latn",
    "ga": "gle_Latn",
    "gd": "gla_Latn",
    "gl": "glg_Latn",
    "gu": "guj_Gujr",
    "ha": "hau_Latn",
    "he": "heb_Hebr",
    "hi": "hin_Deva",
    "hr": "hrv_Latn",
    "ht": "hat_Latn",
    "hu": "hun_Latn",
    "hy": "hye_Armn",
    "id": "ind_Latn",
    "ig": "ibo_Latn",
    "is": "isl_Latn",
    "it": "ita_Latn",
    "ja": "jpn_Jpan",
    "jv": "jav_Latn",
    "ka": "kat_Geor",
    "kk": "kaz_Cyrl",
    "km": "khm_Khmr",
    "kmr": "kmr_Latn",
    "kn": "kan_Knda",
    "ko": "kor_Hang",
    "ky": "kir_Cyrl",
    "lb": "ltz_Latn",
    "lo": "lao_Laoo",
    "lt": "lit_Latn",
    "lv": "lvs_Latn",
    "mk": "mkd_Cyrl",
    "ml": "mal_Mlym",
    "mn": "khk_Cyrl",
    "mr": "mar_Deva",
    "ms": "zsm_Latn",
    "mt": "mlt_Latn",
    "my": "mya_Mymr",
    "nb": "nob_Latn",
    "ne": "npi_Deva",
    "nl": "nld_Latn",
    "nn": "nno_Latn",
    "no": "nob_Latn",
    "pa": "pan_Guru",
    "pl": "pol_Latn",
    "ps": "pbt_Arab",
    "pt": "por_Latn",
    "ro": "ron_Latn",
    "ru": "rus_Cyrl",
    "si": "sin_Sinh",
    "sk": "slk_Latn",
    "sl": "slv_Latn",
    "so": "som_Latn",
    "sq": "als_Latn",
    "sr": "srp_Cyrl",
    "sv": "swe_Latn",
    "sw": "swh_Latn",
    "ta": "tam_Taml",
    "te": "tel_Telu",
    "tg": "tgk_Cyrl",
    "th": "tha_Thai",
    "tl": "tgl_Latn",
    "tr": "tur_Latn",
    "uk": "ukr_Cyrl",
    "ur": "urd_Arab",
    "uz": "uzn_Latn",
    "vi": "vie_Latn",
    "yo": "yor_Latn",
    "zh": "zho_Hans",
    "zh-hans": "zho_Hans",
    "zh-cn": "zho_Hans",
    "zh-sg": "zho_Hans",
    "zh-hant": "zho_Hant",
    "zh-tw": "zho_Hant",
    "zh-hk": "zho_Hant",
    "zh-mo": "zho_Hant",
    "zu": "zul_Latn",
}


class UnknownLanguage(PhotosearchError):
    """A language setting that names no FLORES-200 code this app knows."""


def clean_text(text: str, *, canonicalize: bool = False) -> str:
    """Immich's ``clean_text``: collapse whitespace; for canonicalizing models then drop
    punctuation and lower-case, in that order (so "dog - cat" keeps a double space, as there)."""
    text = " ".join(text.split())
    if canonicalize:
        text = text.translate(_PUNCTUATION).lower()
    return text


def flores_code(language: str) -> str:
    """A FLORES-200 code (returned as is) or a locale tag such as ``de``, ``pt_BR.UTF-8``,
    ``zh-TW`` -> its FLORES-200 code. Raises UnknownLanguage."""
    language = language.strip()
    if _FLORES_PATTERN.match(language):
        return language
    tag = language.split(".")[0].split("@")[0].replace("_", "-").lower()
    for key in (tag, tag.split("-")[0]):
        if key in FLORES_BY_LANGUAGE:
            return FLORES_BY_LANGUAGE[key]
    raise UnknownLanguage(
        f"unknown language {language!r}: give a FLORES-200 code such as fra_Latn, or a "
        f"language like fr or pt_BR (in ${LANGUAGE_ENV} or --language)"
    )


def query_language() -> str:
    """The FLORES-200 code queries to NLLB models are prefixed with (see the module doc).

    An explicit setting that is not a language raises UnknownLanguage; a locale this table
    does not know (or C/POSIX) falls back to English, as Immich does."""
    explicit = os.environ.get(LANGUAGE_ENV, "").strip()
    if explicit:
        return flores_code(explicit)
    for candidate in _locale_candidates():
        try:
            return flores_code(candidate)
        except UnknownLanguage:
            continue
    return DEFAULT_FLORES


def with_language_prefix(text: str, code: str) -> str:
    """Immich's NLLB prefix: the code glued to the cleaned text (the tokenizer splits it off
    as a special token)."""
    return f"{code}{text}"


def _locale_candidates() -> list[str]:
    candidates = [os.environ.get(name, "") for name in ("LC_ALL", "LC_MESSAGES", "LANG")]
    with contextlib.suppress(ValueError, AttributeError):  # odd platform locales
        candidates.append(locale.getlocale(locale.LC_CTYPE)[0] or "")
    return [c for c in candidates if c and c not in ("C", "POSIX") and not c.startswith("C.")]
