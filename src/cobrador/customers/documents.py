"""Brazilian tax documents: CPF (people) and CNPJ (companies), validated by their check digits.

CNPJ is alphanumeric from July 2026 (Receita Federal, IN RFB 2.229/2024): the first 12 characters
may be 0-9 or A-Z, the last 2 stay numeric check digits. Each character is valued ord(c) - 48 (so
digits keep their value and A=17 ... Z=42) and weighted 2..9 cycling from the right, modulo 11.
The old all-digit CNPJ is the special case where every character is a digit.

Documents are stored without mask, uppercase: 11 characters for a CPF, 14 for a CNPJ.
"""

import re

CPF = "cpf"
CNPJ = "cnpj"

_MASK = re.compile(r"[.\-/\s]")
_CPF = re.compile(r"[0-9]{11}")
_CNPJ = re.compile(r"[0-9A-Z]{12}[0-9]{2}")


class InvalidDocument(ValueError):
    pass


def _check_digit(values: list[int], weights: list[int]) -> int:
    remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def _cycling_weights(length: int) -> list[int]:
    """2, 3, ..., 9, 2, 3, ... from the rightmost character, returned left to right."""
    return [2 + (i % 8) for i in range(length)][::-1]


def cpf_check_digits(first_nine: str) -> str:
    values = [int(c) for c in first_nine]
    first = _check_digit(values, list(range(10, 1, -1)))
    second = _check_digit(values + [first], list(range(11, 1, -1)))
    return f"{first}{second}"


def cnpj_check_digits(first_twelve: str) -> str:
    values = [ord(c) - 48 for c in first_twelve]
    first = _check_digit(values, _cycling_weights(12))
    second = _check_digit(values + [first], _cycling_weights(13))
    return f"{first}{second}"


def is_valid_cpf(cpf: str) -> bool:
    """`cpf` unmasked: 11 digits, not all the same, check digits right."""
    return bool(_CPF.fullmatch(cpf)) and len(set(cpf)) > 1 and cpf[9:] == cpf_check_digits(cpf[:9])


def is_valid_cnpj(cnpj: str) -> bool:
    """`cnpj` unmasked and uppercase: 12 of [0-9A-Z] and 2 digits, not all the same, check digits right."""
    return bool(_CNPJ.fullmatch(cnpj)) and len(set(cnpj)) > 1 and cnpj[12:] == cnpj_check_digits(cnpj[:12])


def normalize_document(raw: str) -> tuple[str, str]:
    """Return (document, document_type) for a CPF or CNPJ given with or without its mask
    ("123.456.789-09", "12.ABC.345/01DE-35"); raise InvalidDocument otherwise."""
    document = _MASK.sub("", raw).upper()
    if len(document) == 11:
        if is_valid_cpf(document):
            return document, CPF
        raise InvalidDocument("not a valid CPF (11 digits with matching check digits)")
    if len(document) == 14:
        if is_valid_cnpj(document):
            return document, CNPJ
        raise InvalidDocument("not a valid CNPJ (12 characters 0-9 or A-Z and 2 matching check digits)")
    raise InvalidDocument("a CPF has 11 digits and a CNPJ 14 characters, without counting the mask")


def format_document(document: str, document_type: str) -> str:
    """The usual mask, for display: 123.456.789-09 or 12.ABC.345/01DE-35."""
    if document_type == CPF:
        return f"{document[:3]}.{document[3:6]}.{document[6:9]}-{document[9:]}"
    if document_type == CNPJ:
        return f"{document[:2]}.{document[2:5]}.{document[5:8]}/{document[8:12]}-{document[12:]}"
    return document
