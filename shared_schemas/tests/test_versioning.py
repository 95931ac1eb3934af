import pytest

from shared_schemas.versioning import IncompatibleContractError, check_compatible, is_compatible


@pytest.mark.parametrize(
    ("written", "reader", "ok"),
    [
        ("1.2.0", "1.4.1", True),
        ("1.4.1", "1.2.0", True),
        ("1.9.0", "2.0.0", False),
        ("0.1.0", "0.1.7", True),
        ("0.1.0", "0.2.0", False),  # while the major is 0, a minor may break
        ("2.0.0rc1", "2.0.0", True),
    ],
)
def test_is_compatible(written, reader, ok):
    assert is_compatible(written, reader) is ok


def test_incompatible_data_is_refused_with_a_next_step():
    with pytest.raises(IncompatibleContractError, match="Re-run the producer"):
        check_compatible("1.0.0", where="exchange/instances/x.parquet", reader="2.0.0")
    with pytest.raises(IncompatibleContractError, match="not written through shared_schemas"):
        check_compatible(None, where="x.parquet")
