"""CPF and CNPJ check digits, including the alphanumeric CNPJ (IN RFB 2.229/2024, from July 2026).

The alphanumeric examples were computed with our validator and checked by hand:

  ABCDEFGHIJKL: values A..L = 17..28 (ord(c) - 48), weights 5,4,3,2,9,8,7,6,5,4,3,2
    first:  85+72+57+40+189+176+161+144+125+104+81+56 = 1290; 1290 mod 11 = 3; 11-3 = 8
    second: weights 6,5,4,3,2,9,8,7,6,5,4,3,2 over 17..28 and 8:
            102+90+76+60+42+198+184+168+150+130+108+84+16 = 1408; 1408 mod 11 = 0 (< 2) -> 0
    so ABCDEFGHIJKL80.
  Z0000000000A: Z=42, A=17
    first:  42*5 + 17*2 = 244; 244 mod 11 = 2; 11-2 = 9
    second: 42*6 + 17*3 + 9*2 = 321; 321 mod 11 = 2; 11-2 = 9
    so Z0000000000A99.
  12ABC34501DE35 is the example the Receita Federal publishes.
"""

import pytest

from cobrador.customers.documents import (
    CNPJ,
    CPF,
    InvalidDocument,
    cnpj_check_digits,
    cpf_check_digits,
    format_document,
    is_valid_cnpj,
    is_valid_cpf,
    normalize_document,
)


@pytest.mark.parametrize("raw,document,document_type", [
    ("529.982.247-25", "52998224725", CPF),
    ("52998224725", "52998224725", CPF),
    ("111.444.777-35", "11144477735", CPF),
    ("987.654.321-00", "98765432100", CPF),  # both check digits 0 (remainders < 2)
    ("000.000.001-91", "00000000191", CPF),
    ("11.222.333/0001-81", "11222333000181", CNPJ),
    ("00.000.000/0001-91", "00000000000191", CNPJ),
    ("11222333000181", "11222333000181", CNPJ),
    ("12.ABC.345/01DE-35", "12ABC34501DE35", CNPJ),
    ("12ABC34501DE35", "12ABC34501DE35", CNPJ),
    ("12.abc.345/01de-35", "12ABC34501DE35", CNPJ),  # lowercase is normalized to uppercase
    ("AB.CDE.FGH/IJKL-80", "ABCDEFGHIJKL80", CNPJ),
    ("Z0.000.000/000A-99", "Z0000000000A99", CNPJ),
    (" 12.ABC.345/01DE-35 ", "12ABC34501DE35", CNPJ),
])
def test_valid_documents_are_normalized(raw, document, document_type):
    assert normalize_document(raw) == (document, document_type)


@pytest.mark.parametrize("raw", [
    "529.982.247-24",       # wrong second check digit
    "529.982.247-15",       # wrong first check digit
    "111.111.111-11",       # repeated digits pass the arithmetic but are not a CPF
    "000.000.000-00",
    "52998224",             # too short
    "529982247250",         # 12 characters: neither
    "5299822472A",          # a letter in a CPF
    "11.222.333/0001-82",
    "11.111.111/1111-11",   # repeated digits
    "00000000000000",
    "12.ABC.345/01DE-36",
    "12.ABC.345/01DE-53",   # check digits swapped
    "12.ABC.345/01DE-3A",   # check digits must be numeric
    "12ABC34501DEAB",
    "AB.CDE.FGH/IJKL-81",
    "12.ABÇ.345/01DE-35",   # only 0-9 and A-Z
    "12_ABC_345_01DE_35",   # not a mask we know
    "12ABC345#01DE35",
    "",
])
def test_invalid_documents_are_rejected(raw):
    with pytest.raises(InvalidDocument):
        normalize_document(raw)


def test_check_digit_functions():
    assert cpf_check_digits("529982247") == "25"
    assert cnpj_check_digits("112223330001") == "81"
    assert cnpj_check_digits("12ABC34501DE") == "35"
    assert cnpj_check_digits("ABCDEFGHIJKL") == "80"
    assert cnpj_check_digits("Z0000000000A") == "99"


def test_validators_take_unmasked_uppercase_only():
    assert is_valid_cpf("52998224725")
    assert not is_valid_cpf("529.982.247-25")
    assert is_valid_cnpj("12ABC34501DE35")
    assert not is_valid_cnpj("12abc34501de35")


def test_single_character_changes_of_the_published_cnpj_are_caught():
    """Substituting one character of 12ABC34501DE by a value not 11 apart changes its check digits."""
    body = "12ABC34501DE"
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for position in range(12):
        for char in alphabet:
            if char == body[position]:
                continue
            changed = body[:position] + char + body[position + 1:]
            if abs(ord(char) - ord(body[position])) % 11 != 0:
                assert not is_valid_cnpj(changed + "35"), changed


def test_format_document():
    assert format_document("52998224725", CPF) == "529.982.247-25"
    assert format_document("12ABC34501DE35", CNPJ) == "12.ABC.345/01DE-35"
