import shared_runtime


def test_package_imports():
    assert shared_runtime.__doc__
