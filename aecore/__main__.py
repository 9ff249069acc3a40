import sys

from aecore.cli import main

sys.exit(main())
