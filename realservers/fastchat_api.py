"""``python -m realservers.fastchat_api ARGS``: FastChat's openai_api_server, key from env.

FastChat takes its API keys only as ``--api-keys`` on the command line, where every process
listing shows them. This shim (standard library only: it runs in FastChat's virtualenv,
which has none of the suite's dependencies) reads the key from the environment, appends the
option to its own in-process ``sys.argv`` and runs FastChat's module as ``__main__``.
"""

from __future__ import annotations

import os
import runpy
import sys

KEY_ENV = "CHATCOMPAT_FASTCHAT_API_KEY"
MODULE = "fastchat.serve.openai_api_server"


def main() -> None:
    key = os.environ.pop(KEY_ENV, "")
    sys.argv = [MODULE, *sys.argv[1:], *(["--api-keys", key] if key else [])]
    runpy.run_module(MODULE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
