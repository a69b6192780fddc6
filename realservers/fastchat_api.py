"""``python -m realservers.fastchat_api ARGS``: FastChat's openai_api_server, key from env.

FastChat takes its API keys only as ``--api-keys`` on the command line, where every process
listing shows them, and then logs its parsed arguments, key included. This shim (standard
library only besides FastChat: it runs in FastChat's virtualenv, which has none of the
suite's dependencies) does what FastChat's ``__main__`` does with the key left out of the
arguments, and hands it to FastChat's settings object afterwards, from the environment.
"""

from __future__ import annotations

import importlib
import os
import sys

KEY_ENV = "CHATCOMPAT_FASTCHAT_API_KEY"
MODULE = "fastchat.serve.openai_api_server"


def main() -> None:
    key = os.environ.pop(KEY_ENV, "")
    server = importlib.import_module(MODULE)
    sys.argv = [MODULE, *sys.argv[1:]]
    args = server.create_openai_api_server()  # parses argv, logs it: no key there
    server.app_settings.api_keys = [key] if key else None
    import uvicorn

    uvicorn.run(server.app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
