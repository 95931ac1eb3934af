"""Runtime code shared by etl_app, ml_app and user_app, versioned for its own reasons.

The contracts themselves live in :mod:`shared_schemas`, whose version is the contract version;
this package holds the code that enforces and moves data under them, so an infrastructure fix
here never changes the contract version.
"""
