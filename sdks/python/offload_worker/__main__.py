"""`python -m offload_worker`: the runner a supervisor starts (see README.md)."""

import sys

from offload_worker._runner import main

sys.exit(main())
