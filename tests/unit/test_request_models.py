"""Every request model refuses any JSON value in any field with a ValidationError (a 400), never a crash."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.api import models

MODELS = sorted((m for m in vars(models).values() if isinstance(m, type) and issubclass(m, models.RequestModel)
                 and m not in (models.RequestModel, models.SeedRequest)), key=lambda m: m.__name__)  # fmt: skip
ODD_VALUES = [None, "", " ", "\x00", "x" * 70_000, 0, -1, 1.5, True, [], [None], {}, {"a": None}, [{}]]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_any_value_in_any_field_is_a_validation_error_or_accepted(model):
    for name in model.model_fields:
        for value in ODD_VALUES:
            try:
                model.of({name: value})
            except ValidationError:
                pass


def test_an_empty_optional_text_field_counts_as_not_sent():
    assert models.PackageRequestRequest.of({"package_name": "six", "version": "1", "reason": "r", "agent_id": ""}).agent_id is None


def test_the_body_as_sent_reaches_services_that_read_a_mapping():
    raw = {"argv": ["python", "-V"], "timeout_seconds": 5}
    assert models.CommandRequest.of(raw).fields() == raw
