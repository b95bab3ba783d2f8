import sys

from actbench_ulp.cli import main

sys.exit(main())
