"""What each fault's failure must say: fault name -> {check id (or base id): fragment}.

The fault matrix asserts the fragment appears in the check's results.json message
("expected ...; got ..."), so a check that fails for the wrong reason (a precondition, a
different assertion) is a test failure. Faults may also carry ``messages=`` inline.
"""

from __future__ import annotations

EXPECTED_MESSAGES: dict[str, dict[str, str]] = {}
