"""Golden files of the client tests (tests/client/golden): a text compared
with its checked-in copy; XAPID_UPDATE_GOLDEN=1 rewrites the copy first."""
import os

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def check_golden(relpath, text):
    path = os.path.join(GOLDEN_DIR, relpath)
    if os.environ.get("XAPID_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert text == f.read(), f"{path} differs from the text (XAPID_UPDATE_GOLDEN=1 rewrites it)"
