"""List parameters (`CommaDelimitedList`, `List<...>`) are checked item by item, and
the error names the item that does not fit, not only the whole value."""

from __future__ import annotations

import pytest

from stackwright.errors import InputError
from stackwright.providers.aws.cloudformation_template import check_parameters

TEMPLATE = {"Parameters": {
    "Zones": {"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]},
    "Ports": {"Type": "List<Number>", "MinValue": 1, "MaxValue": 1024, "Default": "80"}},
    "Resources": {}}


@pytest.mark.parametrize(("given", "message"), [
    ({"Zones": "a,c"}, "stack 's': parameter 'Zones' = 'a,c': item 'c' is not one of the AllowedValues ['a', 'b']"),
    ({"Zones": "a", "Ports": "80, 99999"}, "stack 's': parameter 'Ports' = '80, 99999': item '99999' is above MaxValue 1024"),
])
def test_a_list_item_that_does_not_fit_is_named(given: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as err:
        check_parameters("s", TEMPLATE, given)
    assert err.value.message == message


def test_a_single_value_is_named_as_before() -> None:
    with pytest.raises(InputError) as err:
        check_parameters("s", {"Parameters": {"Env": {"Type": "String", "AllowedValues": ["dev"]}}}, {"Env": "qa"})
    assert err.value.message == "stack 's': parameter 'Env' = 'qa' is not one of the AllowedValues ['dev']"


def test_fitting_lists_pass() -> None:
    check_parameters("s", TEMPLATE, {"Zones": "a, b", "Ports": "80,443"})
