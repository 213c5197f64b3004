import pytest

from mer.data.aus import ActionUnit, AUParseError, au_numbers, format_aus, parse_aus


@pytest.mark.parametrize(
    "text, numbers, canonical",
    [
        ("4+7", {4, 7}, "4+7"),
        ("AU4+AU7", {4, 7}, "4+7"),
        ("L12", {12}, "L12"),
        ("R14", {14}, "R14"),
        ("12B", {12}, "12B"),
        ("1+2+(5)", {1, 2, 5}, "1+2+(5)"),
        ("4+L10", {4, 10}, "4+L10"),
        ("au12 + r14a", {12, 14}, "12+R14A"),
        ("AU4(L)+AU12(B)", {4, 12}, "L4+12B"),  # 4DME's suffixes: a side, an intensity
        ("AU12(1)+AU4(?)+(5)", {4, 5, 12}, "4+(5)+12"),  # any other suffix: the AU without it
        ("26+12+1", {1, 12, 26}, "1+12+26"),
        (12.0, {12}, "12"),
        ("", set(), ""),
        ("/", set(), ""),
        (float("nan"), set(), ""),
    ],
)
def test_parse_to_canonical_form(text, numbers, canonical):
    units = parse_aus(text)
    assert au_numbers(units) == numbers
    assert format_aus(units) == canonical
    assert parse_aus(format_aus(units)) == units  # canonical form round-trips


def test_side_intensity_and_uncertainty_are_kept():
    (unit,) = parse_aus("(L12C)")
    assert unit == ActionUnit(12, side="L", intensity="C", uncertain=True)


def test_both_sides_of_one_au_are_two_units():
    assert len(parse_aus("L12+R12")) == 2
    assert au_numbers(parse_aus("L12+R12")) == {12}


@pytest.mark.parametrize("bad", ["4+smile", "AU", "12X", "(5", "0", "4++x7", "L12(R)", "12B(C)", "AU4(L"])
def test_a_token_that_is_not_an_au_names_where(bad):
    with pytest.raises(AUParseError) as err:
        parse_aus(bad, where="coding.xlsx, row 7")
    message = str(err.value)
    assert message.startswith("coding.xlsx, row 7: ")
    assert "is not an action unit" in message and "\n" not in message
